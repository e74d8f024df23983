/**
 * Pacing of a replay: with `speed` N, N× real time between consecutive event times (never
 * backwards). The schedule is anchored at the first event, so the average rate is right even when
 * single waits are short; after the consumer has held the replay up by more than a second the
 * schedule restarts from the current event instead of bursting to catch up.
 */

/** After the consumer held the replay up by more than this (ms), pacing restarts from the current event. */
const RESYNC_AFTER_MS = 1000;

export class ReplayPacer {
  // Event time `t` is due at anchorReal + (t - anchorEvent) / speed.
  private anchorEvent = -Infinity;
  private anchorReal = 0;
  private paceTime = -Infinity;

  /** @param speed N × real time between event times; > 0 (a speed of 0 is not paced at all). */
  constructor(private readonly speed: number) {}

  /**
   * How long to wait (ms, 0: none) before the event at `eventTime` (epoch ms) goes out, `now` being
   * `performance.now()`.
   */
  delay(eventTime: number, now: number): number {
    this.paceTime = Math.max(this.paceTime, eventTime);
    if (this.anchorEvent === -Infinity) {
      this.anchorEvent = this.paceTime;
      this.anchorReal = now;
      return 0;
    }
    const due = this.anchorReal + (this.paceTime - this.anchorEvent) / this.speed;
    if (due > now) return due - now;
    if (now - due > RESYNC_AFTER_MS) {
      this.anchorEvent = this.paceTime;
      this.anchorReal = now;
    }
    return 0;
  }
}
