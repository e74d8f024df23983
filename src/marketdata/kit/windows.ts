/**
 * Sliding windows of weight: at most `count` weight in any `windowMs`, for every window at once (a
 * venue's "6000 per minute" and "300 per 5 minutes" together). Time is passed in, so the same piece
 * counts REST weight, new connections and subscribe messages, on a real or a test clock.
 *
 * A venue counts a call when it arrives, which is some time after we start it. So a call can be taken
 * as pending: it then counts as happening now until it is settled with the time its answer came (its
 * arrival lies between the two), and the windows hold at the venue's end too, whatever the latency.
 */
import type { RateWindow } from './venue.js';

/** How soon a caller held only by pending takes looks again, ms. */
const PENDING_RECHECK_MS = 25;

interface Entry {
  at: number;
  readonly weight: number;
  /** Counts as happening at any time asked about, until settled. */
  pending: boolean;
}

/** A pending take: `settle(t)` says when it was answered (done once; later calls do nothing). */
export interface Taken {
  settle(t: number): void;
}

export class SlidingWindows {
  /** What was taken (kept for the longest window, pending ones until settled). */
  private entries: Entry[] = [];
  private readonly longestMs: number;

  constructor(readonly windows: readonly RateWindow[]) {
    this.longestMs = windows.reduce((m, w) => Math.max(m, w.windowMs), 0);
  }

  /** Weight taken in the window of `windowMs` ending at `t` (pending takes included). */
  usedIn(windowMs: number, t: number): number {
    let used = 0;
    for (const e of this.entries) if (e.pending || e.at > t - windowMs) used += e.weight;
    return used;
  }

  /**
   * How long `weight` taken at `t` would have to wait, ms (0 = now). A weight above a window's count
   * waits for that window to be empty, so it is never refused for ever. Pending takes never leave a
   * window; the wait counts on settled ones only (asked again once it is over).
   */
  waitMs(weight: number, t: number): number {
    this.prune(t);
    let wait = 0;
    for (const w of this.windows) {
      let used = this.usedIn(w.windowMs, t);
      if (used + weight <= w.count || used === 0) continue;
      const leaving = this.entries
        .filter((e) => !e.pending && e.at > t - w.windowMs)
        .sort((a, b) => a.at - b.at);
      let until = PENDING_RECHECK_MS; // only pending takes in the way: look again shortly
      for (const e of leaving) {
        used -= e.weight;
        until = e.at + w.windowMs - t;
        if (used + weight <= w.count || used === 0) break;
      }
      wait = Math.max(wait, until);
    }
    return wait;
  }

  /** Count `weight` as taken at `t`; `pending`: until settled (see above). */
  take(weight: number, t: number, pending = false): Taken {
    const e: Entry = { at: t, weight, pending };
    this.entries.push(e);
    return {
      settle: (at: number) => {
        if (!e.pending) return;
        e.pending = false;
        e.at = Math.max(e.at, at);
      },
    };
  }

  private prune(t: number): void {
    if (this.entries.some((e) => !e.pending && e.at <= t - this.longestMs)) {
      this.entries = this.entries.filter((e) => e.pending || e.at > t - this.longestMs);
    }
  }
}
