/**
 * The connection budget: new WebSocket connections per window of one venue for the whole process
 * (`VenueLimits.connections`), so a mass reconnect of many sockets waits for its turn instead of
 * breaking the venue's limit, and subscribe messages per window on one connection
 * (`VenueLimits.subscribes`). Both are a `WindowGate`: callers take turns in order and wait for room.
 */
import { sleep as abortableSleep } from '../../util/sleep.js';
import type { RateWindow } from './venue.js';
import { SlidingWindows, type Taken } from './windows.js';

export interface WindowGateOptions {
  /** Clock, epoch ms. Default `Date.now` (limits protect real rates). */
  readonly clock?: () => number;
  /** Sleep that the signal cuts short. Default util/sleep. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** At most `limit.count` starts in any `limit.windowMs`; `acquire` waits for a turn. */
export class WindowGate {
  private readonly windows: SlidingWindows;
  private readonly clock: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private turn: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(
    readonly limit: RateWindow,
    opts: WindowGateOptions = {},
  ) {
    this.windows = new SlidingWindows([limit]);
    this.clock = opts.clock ?? Date.now;
    this.sleep = opts.sleep ?? abortableSleep;
  }

  /** Callers waiting for a turn now. */
  get queued(): number {
    return this.waiting;
  }

  /** Starts in the current window. */
  get used(): number {
    return this.windows.usedIn(this.limit.windowMs, this.clock());
  }

  /** How long a start asked for now would wait, ms. */
  waitMs(): number {
    return this.windows.waitMs(1, this.clock());
  }

  /** Wait for room and count one start; false (not counted) if the signal aborted first. */
  acquire(signal?: AbortSignal): Promise<boolean> {
    return this.turnFor(signal, false).then((t) => t !== null);
  }

  /**
   * Like `acquire`, but the start counts as now until settled (a connection: with the time its handshake
   * ended, the venue counted it in between). Null if the signal aborted first.
   */
  acquirePending(signal?: AbortSignal): Promise<Taken | null> {
    return this.turnFor(signal, true);
  }

  private turnFor(signal: AbortSignal | undefined, pending: boolean): Promise<Taken | null> {
    this.waiting += 1;
    const mine = this.turn.then(async () => {
      try {
        for (;;) {
          if (signal?.aborted) return null;
          const wait = this.waitMs();
          if (wait <= 0) break;
          await this.sleep(wait, signal);
        }
        return this.windows.take(1, this.clock(), pending);
      } finally {
        this.waiting -= 1;
      }
    });
    // The next turn starts a tick later, so the caller of this one goes first.
    this.turn = mine.then(() => undefined);
    return mine;
  }
}

const connectionGates = new Map<string, WindowGate>();

/**
 * The process's gate for new connections of `venue` to the server of `url` (created with `limit` on
 * first use). Counted per server like the venue counts them, so tests with separate local servers do not
 * share one.
 */
export function connectionBudgetFor(venue: string, url: string, limit: RateWindow): WindowGate {
  const key = `${venue} ${new URL(url).host}`;
  let g = connectionGates.get(key);
  if (!g) {
    g = new WindowGate(limit);
    connectionGates.set(key, g);
  }
  return g;
}
