/**
 * The REST budget of a venue, shared by every caller in the process (every source, every backfill):
 * sliding windows of request weight (`VenueLimits.rest`, every window at once) and the venue's own word
 * (`blockFor(Retry-After)` after a 429/418 or its rate-limit code holds every caller until then). One
 * budget per venue and REST origin (`restBudgetFor`): production callers of one venue share it, tests
 * with separate local servers do not.
 *
 * In front of it, per source, the `HistoryLimiter`: config `max_history_calls_per_min`, a cap of calls
 * in any 60 s window. A call waits for both; callers of one limiter take turns in order, and the limiter
 * reports throttling (a window full, a block in force) to its source.
 */
import { sleep as abortableSleep } from '../../util/sleep.js';
import { InvalidArgumentError } from '../../util/errors.js';
import { withDefaults } from '../../util/defaults.js';
import type { RateWindow } from './venue.js';
import { SlidingWindows, type Taken } from './windows.js';

/** The shared weight windows and Retry-After block of one venue's REST origin. Time is passed in. */
export class RestBudget {
  private readonly windows: SlidingWindows;
  private blockedUntil = 0;

  constructor(windows: readonly RateWindow[]) {
    this.windows = new SlidingWindows(windows);
  }

  /** How long a call of `weight` asked for at `t` would wait, ms. */
  waitMs(weight: number, t: number): number {
    return Math.max(this.blockedUntil - t, this.windows.waitMs(weight, t), 0);
  }

  /** Count a call of `weight` started at `t`; `pending`: it counts as now until settled. */
  take(weight: number, t: number, pending = false): Taken {
    return this.windows.take(weight, t, pending);
  }

  /** Weight started in the window of `windowMs` ending at `t`. */
  usedIn(windowMs: number, t: number): number {
    return this.windows.usedIn(windowMs, t);
  }

  /** The venue said "not before `ms` from `t`". */
  blockFor(ms: number, t: number): void {
    this.blockedUntil = Math.max(this.blockedUntil, t + Math.max(0, Math.ceil(ms)));
  }

  /** True while a Retry-After block is in force at `t`. */
  blocked(t: number): boolean {
    return t < this.blockedUntil;
  }
}

const budgets = new Map<string, RestBudget>();

/**
 * The process's budget for `venue` at the origin of `url` (created with `windows` on first use). The
 * limits are the venue's, counted per server: two sources of one venue draw on one budget.
 */
export function restBudgetFor(venue: string, url: string, windows: readonly RateWindow[]): RestBudget {
  const key = `${venue} ${new URL(url).origin}`;
  let b = budgets.get(key);
  if (!b) {
    b = new RestBudget(windows);
    budgets.set(key, b);
  }
  return b;
}

/** What one call costs: its weight in a shared budget. */
export interface RestCost {
  readonly budget: RestBudget;
  readonly weight: number;
  /**
   * Given the call's pending take: the caller settles it when the answer comes (the venue counted the
   * call somewhere in between).
   * @defaultValue none (the call counts at its start)
   */
  readonly taken?: ((t: Taken) => void) | undefined;
}

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
   * Told when throttling starts (with the expected wait, ms), when a Retry-After block arrives, and when
   * it ends (0).
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
  private readonly windowMs: number;
  private readonly clock: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly onThrottle: (throttled: boolean, waitMs: number) => void;
  private readonly calls: SlidingWindows;
  /** Where a call without a cost of its own is blocked by `blockFor`. */
  private readonly own = new RestBudget([]);
  private turn: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private throttled = false;

  constructor(options: HistoryLimiterOptions) {
    const opts = withDefaults(HISTORY_LIMITER_DEFAULTS, options);
    if (!Number.isSafeInteger(opts.maxCalls) || opts.maxCalls < 1)
      throw new InvalidArgumentError('maxCalls', 'must be >= 1');
    this.windowMs = opts.windowMs;
    this.calls = new SlidingWindows([{ count: opts.maxCalls, windowMs: opts.windowMs }]);
    this.clock = opts.clock;
    this.sleep = opts.sleep;
    this.onThrottle = opts.onThrottle;
  }

  /** True while a caller waits for a window or a Retry-After block is in force. */
  get throttling(): boolean {
    return this.throttled || this.own.blocked(this.clock());
  }

  /** Calls started in the current window. */
  get callsInWindow(): number {
    return this.calls.usedIn(this.windowMs, this.clock());
  }

  /** How long a call asked for now would wait, ms (0 = it may start now). */
  waitMs(cost?: RestCost): number {
    const t = this.clock();
    const shared = cost ? cost.budget.waitMs(cost.weight, t) : 0;
    return Math.max(this.calls.waitMs(1, t), this.own.waitMs(0, t), shared);
  }

  /**
   * Wait for a turn and count the call (and its weight in `cost`'s budget). Resolves true when the call
   * may start, false when the signal aborted first (the call is then not counted).
   */
  acquire(signal?: AbortSignal, cost?: RestCost): Promise<boolean> {
    this.pending += 1;
    const mine = this.turn.then(() => this.take(signal, cost));
    this.turn = mine;
    return mine;
  }

  /**
   * The venue said "not before `ms` from now" (HTTP 429/418 `Retry-After`, its rate-limit code): every
   * caller of `budget` (of this limiter when none) waits.
   */
  blockFor(ms: number, budget?: RestBudget): void {
    const wait = Math.max(0, Math.ceil(ms));
    (budget ?? this.own).blockFor(wait, this.clock());
    this.throttled = true;
    this.onThrottle(true, wait);
  }

  private async take(signal: AbortSignal | undefined, cost: RestCost | undefined): Promise<boolean> {
    try {
      for (;;) {
        if (signal?.aborted) return false;
        const wait = this.waitMs(cost);
        if (wait <= 0) break;
        this.setThrottled(true, wait);
        await this.sleep(wait, signal);
      }
      const t = this.clock();
      this.calls.take(1, t);
      if (cost) {
        const taken = cost.budget.take(cost.weight, t, cost.taken !== undefined);
        cost.taken?.(taken);
      }
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
}
