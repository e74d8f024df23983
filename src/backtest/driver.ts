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
import { BacktestAccumulator, DEFAULT_MAX_CURVE_POINTS, type BacktestResult } from './result.js';
import { withDefaults } from '../util/defaults.js';

export interface BacktestProgress {
  /** Candles of [from, to) processed so far. */
  readonly processed: number;
  /** Candles [from, to) can hold at most (the timeframe's slots; closed markets have fewer). */
  readonly expected: number;
  /** processed / expected, at most 1. */
  readonly fraction: number;
}

export interface BacktestRunOptions {
  /** The candle history read. */
  readonly store: CandleStore;
  /** The strategy run. */
  readonly spec: StrategySpec;
  /** Start of the range, epoch ms: candles with `from <= ts_open < to`. */
  readonly from: number;
  /** End of the range (exclusive), epoch ms. */
  readonly to: number;
  /**
   * Candles per store read, candles (at least 1).
   * @defaultValue 5000
   */
  readonly pageSize?: number | undefined;
  /**
   * Report progress every this many candles, candles (at least 1).
   * @defaultValue 5000
   */
  readonly progressEvery?: number | undefined;
  /**
   * Called with the progress every `progressEvery` candles.
   * @defaultValue none (not reported)
   */
  readonly onProgress?: (p: BacktestProgress) => Promise<void> | void;
  /**
   * Asked between pages; true stops the run (the result covers what ran, `complete: false`).
   * @defaultValue none (runs to the end)
   */
  readonly shouldStop?: () => Promise<boolean> | boolean;
  /**
   * Most points of the equity curve in the result, points.
   * @defaultValue 2000
   */
  readonly maxCurvePoints?: number | undefined;
}

/** The defaults of {@link BacktestRunOptions}, applied by `runBacktest`. */
export const BACKTEST_RUN_DEFAULTS = Object.freeze({
  pageSize: 5000,
  progressEvery: 5000,
  maxCurvePoints: DEFAULT_MAX_CURVE_POINTS,
} satisfies Partial<BacktestRunOptions>);

export interface BacktestOutcome {
  readonly result: BacktestResult;
  readonly stopped: boolean;
}

export async function runBacktest(opts: BacktestRunOptions): Promise<BacktestOutcome> {
  const o = withDefaults(BACKTEST_RUN_DEFAULTS, opts);
  if (!Number.isFinite(o.from) || !Number.isFinite(o.to) || o.from >= o.to)
    throw new InvalidRangeError(`backtest range must have from < to (got ${o.from} .. ${o.to})`);
  const { spec } = o;
  const step = TIMEFRAME_MS[spec.timeframe];
  const engine = createStrategy(spec);
  const acc = new BacktestAccumulator(spec, o.maxCurvePoints);
  const pageSize = Math.max(1, o.pageSize);
  const every = Math.max(1, o.progressEvery);
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
