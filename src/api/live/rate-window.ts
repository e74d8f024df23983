/**
 * A fixed-window counter: at most `limit` events per `windowMs`. The live client counts its messages
 * with one (the flood limit) and its subscribe/unsubscribe requests with another.
 */
export class RateWindow {
  private start = Date.now();
  private count = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Count one event; false when it is over the limit of the current window. */
  take(now = Date.now()): boolean {
    if (now - this.start >= this.windowMs) {
      this.start = now;
      this.count = 0;
    }
    return ++this.count <= this.limit;
  }

  /** Time until the current window ends, ms. */
  retryAfterMs(now = Date.now()): number {
    return Math.max(0, this.start + this.windowMs - now);
  }
}
