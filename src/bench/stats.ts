/**
 * Small, pure statistics helpers for `marketbus bench`: percentiles of latency samples, rates and
 * ratios rounded for a JSON report. No I/O, no clocks, so they are unit-tested in isolation.
 */
import { InvalidArgumentError } from '../util/errors.js';

/** A latency distribution in the samples' unit (ms in the bench). */
export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/**
 * The p-th percentile (0..100) of samples already sorted ascending, by the nearest-rank method: the
 * smallest sample such that at least p% of the samples are <= it. Nearest rank (rather than linear
 * interpolation) always returns an observed value, which is what a tail latency should be.
 * NaN for no samples.
 */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (!Number.isFinite(p) || p < 0 || p > 100)
    throw new InvalidArgumentError('percentile', `must be within 0..100, got ${p}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(n, rank) - 1] as number;
}

/** Sorted ascending copy as a Float64Array (numeric sort; a plain Array.sort would compare as strings). */
export function sortedCopy(samples: ArrayLike<number>): Float64Array {
  return Float64Array.from(samples).sort();
}

/** The p-th percentile (0..100) of unsorted samples; see `percentileOfSorted`. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  return percentileOfSorted(sortedCopy(samples), p);
}

/** Count, mean, extremes and the usual percentiles of the samples (NaN everywhere but count when empty). */
export function summarize(samples: ArrayLike<number>): Summary {
  const s = sortedCopy(samples);
  let sum = 0;
  for (const v of s) sum += v;
  const n = s.length;
  return {
    count: n,
    min: n > 0 ? (s[0] as number) : Number.NaN,
    mean: n > 0 ? sum / n : Number.NaN,
    p50: percentileOfSorted(s, 50),
    p90: percentileOfSorted(s, 90),
    p99: percentileOfSorted(s, 99),
    p999: percentileOfSorted(s, 99.9),
    max: n > 0 ? (s[n - 1] as number) : Number.NaN,
  };
}

/** Events per second from a count and a duration in ms; NaN when the duration is not positive. */
export function ratePerSecond(count: number, durationMs: number): number {
  return durationMs > 0 ? (count * 1000) / durationMs : Number.NaN;
}

/** a / b, NaN when b is not a positive finite number (a ratio against nothing means nothing). */
export function ratio(a: number, b: number): number {
  return Number.isFinite(b) && b > 0 ? a / b : Number.NaN;
}

/** Round to `digits` decimals; NaN and infinities become null so the JSON report stays valid and explicit. */
export function round(x: number, digits = 3): number | null {
  if (!Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The largest finite value (the best of repeated throughput runs); NaN when there is none. */
export function best(values: readonly number[]): number {
  let out = Number.NaN;
  for (const v of values) if (Number.isFinite(v) && (Number.isNaN(out) || v > out)) out = v;
  return out;
}
