/**
 * Does memory stay flat? Pure arithmetic over a time series of (seconds, MiB): the least-squares slope
 * over the second half of the run, and the medians of its two quarters. A series passes when its slope
 * over the second half is at most `maxSlopeMiBPerMin` OR at most `maxSlopePctPerMin` percent of its mean
 * a minute (whichever allows more): a leak that grows with the work done shows as a steady slope, while
 * V8's collector and allocator make RSS wander by a few MiB either way without trending.
 */
export interface Point {
  /** Seconds since the start of the run. */
  readonly t: number;
  readonly v: number;
}

export interface FlatCriterion {
  /** Absolute allowance, MiB per minute. */
  readonly maxSlopeMiBPerMin: number;
  /** Relative allowance, percent of the second half's mean per minute. */
  readonly maxSlopePctPerMin: number;
}

export interface FlatVerdict {
  readonly samples: number;
  readonly first_half_mean: number | null;
  readonly second_half_mean: number | null;
  /** Median of the third and of the fourth quarter of the run. */
  readonly q3_median: number | null;
  readonly q4_median: number | null;
  /** Least-squares slope over the second half, MiB per minute. */
  readonly slope_per_min: number | null;
  /** The slope this series was allowed, MiB per minute. */
  readonly allowed_per_min: number | null;
  readonly pass: boolean;
}

/** Least-squares slope of v over t (per unit of t); NaN for fewer than two distinct times. */
export function slope(points: readonly Point[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  let st = 0;
  let sv = 0;
  for (const p of points) {
    st += p.t;
    sv += p.v;
  }
  const mt = st / n;
  const mv = sv / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return den > 0 ? num / den : Number.NaN;
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

const r2 = (x: number): number | null => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
const r3 = (x: number): number | null => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);

/** The verdict of one series over [start, end] seconds (the halves and quarters are of that span). */
export function flatVerdict(
  points: readonly Point[],
  start: number,
  end: number,
  c: FlatCriterion,
): FlatVerdict {
  const span = end - start;
  const within = (a: number, b: number): number[] =>
    points.filter((p) => p.t >= start + a * span && p.t <= start + b * span).map((p) => p.v);
  const second = points.filter((p) => p.t >= start + span / 2 && p.t <= end);
  const perMin = slope(second) * 60;
  const secondMean = mean(second.map((p) => p.v));
  const allowed = Math.max(c.maxSlopeMiBPerMin, (c.maxSlopePctPerMin / 100) * secondMean);
  return {
    samples: points.length,
    first_half_mean: r2(mean(within(0, 0.5))),
    second_half_mean: r2(secondMean),
    q3_median: r2(median(within(0.5, 0.75))),
    q4_median: r2(median(within(0.75, 1))),
    slope_per_min: r3(perMin),
    allowed_per_min: r3(allowed),
    pass: Number.isFinite(perMin) && perMin <= allowed,
  };
}
