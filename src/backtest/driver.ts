/**
 * The backtest driver: the second driver of the one strategy implementation (`strategy/engine.ts`).
 * It feeds stored candles to `createStrategy(spec)` exactly as the live runner's instrument worker
 * does when a run starts at `from`: one ascending sequence from `from - warmupCandles × timeframe`
 * (the warm-up, fed without recording, as the live runner replays it without outputs) through `to`,
 * read with `historyRange` in pages. So a backtest over the candles of a live run that started at
 * `from` sees the same indicator values and gives the same signals, candle by candle.
 *
 * Between pages it asks `shouldStop` (cancellation); every `progressEvery` candles it reports
 * progress. The next page is read while the current one is processed.
 */
import { TIMEFRAME_MS, type Candle } from '../contracts/candle.js';
import type { CandleStore } from '../history/store.js';
import { historyRange } from '../history/subscription.js';
import { InvalidRangeError } from '../util/errors.js';
import { createStrategy } from '../strategy/engine.js';
import type { StrategySpec } from '../strategy/spec.js';
import { BacktestAccumulator, type BacktestResult } from './result.js';

export interface BacktestProgress {
  /** Candles of [from, to) processed so far. */
  readonly processed: number;
  /** Candles [from, to) can hold at most (the timeframe's slots; closed markets have fewer). */
  readonly expected: number;
  /** processed / expected, at most 1. */
  readonly fraction: number;
}

export interface BacktestRunOptions {
  readonly store: CandleStore;
  readonly spec: StrategySpec;
  /** Epoch ms: candles with `from <= ts_open < to`. */
  readonly from: number;
  readonly to: number;
  /** Candles per store read. Default 5000. */
  readonly pageSize?: number;
  /** Report progress every this many candles. Default 5000. */
  readonly progressEvery?: number;
  readonly onProgress?: (p: BacktestProgress) => Promise<void> | void;
  /** Asked between pages; true stops the run (the result covers what ran, `complete: false`). */
  readonly shouldStop?: () => Promise<boolean> | boolean;
  readonly maxCurvePoints?: number;
}

export interface BacktestOutcome {
  readonly result: BacktestResult;
  readonly stopped: boolean;
}

export async function runBacktest(o: BacktestRunOptions): Promise<BacktestOutcome> {
  if (!Number.isFinite(o.from) || !Number.isFinite(o.to) || o.from >= o.to)
    throw new InvalidRangeError(`backtest range must have from < to (got ${o.from} .. ${o.to})`);
  const { spec } = o;
  const step = TIMEFRAME_MS[spec.timeframe];
  const engine = createStrategy(spec);
  const acc = new BacktestAccumulator(spec, o.maxCurvePoints);
  const pageSize = Math.max(1, o.pageSize ?? 5000);
  const every = Math.max(1, o.progressEvery ?? 5000);
  const expected = Math.max(1, Math.ceil((o.to - o.from) / step));
  const fetch = (cursor: number): Promise<Candle[]> =>
    historyRange(o.store, spec.instrumentKey, spec.timeframe, cursor, o.to, pageSize);

  let reported = 0;
  let stopped = false;
  let next: Promise<Candle[]> | null = fetch(o.from - engine.warmupCandles * step);
  while (next) {
    const page: Candle[] = await next;
    const last = page[page.length - 1];
    next = last && page.length >= pageSize ? fetch(last.tsOpen + 1) : null;
    // A prefetched page nobody reads (stopped, failed) must not become an unhandled rejection.
    next?.catch(() => undefined);
    for (const c of page) {
      if (c.tsOpen < o.from) {
        if (engine.onCandle(c)) acc.warmup++;
        continue;
      }
      const s = engine.onCandle(c);
      if (!s) continue;
      acc.add(s);
      if (o.onProgress && acc.processed - reported >= every) {
        reported = acc.processed;
        await o.onProgress(progressOf(acc.processed, expected));
      }
    }
    if (next && o.shouldStop && (await o.shouldStop())) {
      stopped = true;
      break;
    }
  }
  if (!stopped && o.onProgress && acc.processed !== reported)
    await o.onProgress(progressOf(acc.processed, expected));
  return { result: acc.result({ from: o.from, to: o.to }, !stopped), stopped };
}

function progressOf(processed: number, expected: number): BacktestProgress {
  return { processed, expected, fraction: Math.min(1, processed / expected) };
}
