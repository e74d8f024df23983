/**
 * The gap ledger: per instrument, the closed minutes missing between the first stored candle and now.
 * Minutes when the instrument's market is closed (FX weekends) are not gaps.
 */
import { isMarketOpen } from '../marketdata/market-hours.js';
import type { CandleStore } from './store.js';

const M = 60_000;

export interface Gap {
  readonly instrumentKey: string;
  /** Open time of the first missing minute, epoch ms. */
  readonly fromMs: number;
  /** Open time just past the last missing minute (exclusive), epoch ms. */
  readonly toMs: number;
  readonly minutes: number;
}

/** Missing closed minutes in `[fromMs, toMs)` given the stored open times (ascending). */
export function missingRanges(
  instrumentKey: string,
  fromMs: number,
  toMs: number,
  stored: readonly number[],
): Gap[] {
  const have = new Set(stored);
  const gaps: Gap[] = [];
  let start: number | null = null;
  const close = (end: number): void => {
    if (start !== null) gaps.push({ instrumentKey, fromMs: start, toMs: end, minutes: (end - start) / M });
    start = null;
  };
  for (let t = Math.ceil(fromMs / M) * M; t < toMs; t += M) {
    const missing = !have.has(t) && isMarketOpen(instrumentKey, t);
    if (missing && start === null) start = t;
    if (!missing) close(t);
  }
  close(Math.ceil(toMs / M) * M);
  return gaps;
}

/**
 * Gaps of one instrument from its first stored candle to the last closed minute before `nowMs`.
 * Scans in windows of `windowMinutes` so a long history is not loaded at once.
 */
export async function findGaps(
  store: CandleStore,
  instrumentKey: string,
  nowMs = Date.now(),
  windowMinutes = 10_080,
): Promise<Gap[]> {
  const b = await store.bounds(instrumentKey);
  if (!b) return [];
  const end = Math.floor(nowMs / M) * M; // exclusive: the minute still open is not closed yet
  const out: Gap[] = [];
  for (let from = b.first; from < end; from += windowMinutes * M) {
    const to = Math.min(end, from + windowMinutes * M);
    const found = missingRanges(instrumentKey, from, to, await store.openTimes(instrumentKey, from, to));
    // Merge a gap that runs across a window edge.
    const prev = out[out.length - 1];
    const first = found[0];
    if (prev && first && prev.toMs === first.fromMs) {
      out[out.length - 1] = { ...prev, toMs: first.toMs, minutes: prev.minutes + first.minutes };
      found.shift();
    }
    out.push(...found);
  }
  return out;
}
