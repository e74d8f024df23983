/**
 * Sliding-window limit of history (REST) calls, config `max_history_calls_per_min`: at most `maxCalls`
 * calls start in any window of `windowMs`. It also honours the exchange's own word: after an HTTP 429
 * or 418, `blockFor(Retry-After)` holds every call until that time. Callers take turns in order.
 */
import { sleep as abortableSleep } from '../../../util/sleep.js';
import { InvalidArgumentError } from '../../../util/errors.js';
import { withDefaults } from '../../../util/defaults.js';

export interface HistoryLimiterOptions {
  /** Calls allowed to start in any window, calls (config `max_history_calls_per_min`). */
  readonly maxCalls: number;
  /**
   * Window length, ms.
   * @defaultValue 60000
   */
  readonly windowMs?: number | undefined;
  /**
   * Clock, epoch ms (real time: the limit protects real request rates).
   * @defaultValue `Date.now`
   */
  readonly clock?: (() => number) | undefined;
  /**
   * Sleep that the signal cuts short, ms.
   * @defaultValue the abortable `sleep` of util/sleep
   */
  readonly sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /**
   * Told when throttling starts (with the expected wait, ms), when a 429/418 block arrives, and when it
   * ends (0).
   * @defaultValue none (not told)
   */
  readonly onThrottle?: ((throttled: boolean, waitMs: number) => void) | undefined;
}

/** The defaults of {@link HistoryLimiterOptions}, applied by the `HistoryLimiter` constructor. */
export const HISTORY_LIMITER_DEFAULTS = Object.freeze({
  windowMs: 60_000,
  clock: Date.now,
  sleep: abortableSleep,
  onThrottle: (_throttled: boolean, _waitMs: number): void => undefined,
} satisfies Partial<HistoryLimiterOptions>);

export class HistoryLimiter {
  private readonly maxCalls: number;
  private readonly windowMs: number;
  private readonly clock: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly onThrottle: (throttled: boolean, waitMs: number) => void;
  /** Start times of the calls in the current window, ascending. */
  private readonly calls: number[] = [];
  private blockedUntil = 0;
  private turn: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private throttled = false;

  constructor(options: HistoryLimiterOptions) {
    const opts = withDefaults(HISTORY_LIMITER_DEFAULTS, options);
    if (!Number.isSafeInteger(opts.maxCalls) || opts.maxCalls < 1)
      throw new InvalidArgumentError('maxCalls', 'must be >= 1');
    this.maxCalls = opts.maxCalls;
    this.windowMs = opts.windowMs;
    this.clock = opts.clock;
    this.sleep = opts.sleep;
    this.onThrottle = opts.onThrottle;
  }

  /** True while a caller waits for the window or a Retry-After block is in force. */
  get throttling(): boolean {
    return this.throttled || this.clock() < this.blockedUntil;
  }

  /** Calls started in the current window. */
  get callsInWindow(): number {
    this.prune(this.clock());
    return this.calls.length;
  }

  /** How long a call asked for now would wait, ms (0 = it may start now). */
  waitMs(): number {
    const t = this.clock();
    this.prune(t);
    let wait = Math.max(0, this.blockedUntil - t);
    if (this.calls.length >= this.maxCalls) {
      const oldest = this.calls[this.calls.length - this.maxCalls] ?? t;
      wait = Math.max(wait, oldest + this.windowMs - t);
    }
    return wait;
  }

  /**
   * Wait for a turn and count the call. Resolves true when the call may start, false when the signal
   * aborted first (the call is then not counted).
   */
  acquire(signal?: AbortSignal): Promise<boolean> {
    this.pending += 1;
    const mine = this.turn.then(() => this.take(signal));
    this.turn = mine;
    return mine;
  }

  /** The exchange said "not before `ms` from now" (HTTP 429/418 `Retry-After`). */
  blockFor(ms: number): void {
    const wait = Math.max(0, Math.ceil(ms));
    this.blockedUntil = Math.max(this.blockedUntil, this.clock() + wait);
    this.throttled = true;
    this.onThrottle(true, wait);
  }

  private async take(signal: AbortSignal | undefined): Promise<boolean> {
    try {
      for (;;) {
        if (signal?.aborted) return false;
        const wait = this.waitMs();
        if (wait <= 0) break;
        this.setThrottled(true, wait);
        await this.sleep(wait, signal);
      }
      this.calls.push(this.clock());
      return true;
    } finally {
      this.pending -= 1;
      if (this.pending === 0) this.setThrottled(false, 0);
    }
  }

  private setThrottled(throttled: boolean, waitMs: number): void {
    if (throttled === this.throttled) return;
    this.throttled = throttled;
    this.onThrottle(throttled, waitMs);
  }

  private prune(t: number): void {
    while (this.calls.length > 0 && (this.calls[0] ?? t) <= t - this.windowMs) this.calls.shift();
  }
}
