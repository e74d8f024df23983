/**
 * Sliding windows of weight: at most `count` weight started in any `windowMs`, for every window at once
 * (a venue's "6000 per minute" and "300 per 5 minutes" together). Time is passed in, so the same piece
 * counts REST weight, new connections and subscribe messages, on a real or a test clock.
 */
import type { RateWindow } from './venue.js';

interface Entry {
  readonly at: number;
  readonly weight: number;
}

export class SlidingWindows {
  /** What was taken, ascending by time (kept for the longest window). */
  private readonly entries: Entry[] = [];
  private readonly longestMs: number;

  constructor(readonly windows: readonly RateWindow[]) {
    this.longestMs = windows.reduce((m, w) => Math.max(m, w.windowMs), 0);
  }

  /** Weight taken in the window of `windowMs` ending at `t`. */
  usedIn(windowMs: number, t: number): number {
    let used = 0;
    for (let i = this.entries.length - 1; i >= 0; i -= 1) {
      const e = this.entries[i];
      if (e === undefined || e.at <= t - windowMs) break;
      used += e.weight;
    }
    return used;
  }

  /**
   * How long `weight` taken at `t` would have to wait, ms (0 = now). A weight above a window's count
   * waits for that window to be empty, so it is never refused for ever.
   */
  waitMs(weight: number, t: number): number {
    this.prune(t);
    let wait = 0;
    for (const w of this.windows) {
      let used = this.usedIn(w.windowMs, t);
      if (used + weight <= w.count || used === 0) continue;
      // Walk the window's entries from the oldest until enough has left it.
      for (const e of this.entries) {
        if (e.at <= t - w.windowMs) continue;
        used -= e.weight;
        if (used + weight <= w.count || used === 0) {
          wait = Math.max(wait, e.at + w.windowMs - t);
          break;
        }
      }
    }
    return wait;
  }

  /** Count `weight` as taken at `t`. */
  take(weight: number, t: number): void {
    this.entries.push({ at: t, weight });
  }

  private prune(t: number): void {
    while (this.entries.length > 0 && (this.entries[0]?.at ?? t) <= t - this.longestMs) this.entries.shift();
  }
}
