import { InvalidArgumentError } from '../../src/util/errors.js';
import { describe, expect, it } from 'vitest';
import {
  best,
  percentile,
  percentileOfSorted,
  ratePerSecond,
  ratio,
  round,
  sortedCopy,
  summarize,
} from '../../src/bench/stats.js';

const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

describe('percentile (nearest rank)', () => {
  it('returns observed values at the textbook ranks', () => {
    expect(percentile(oneToHundred, 50)).toBe(50);
    expect(percentile(oneToHundred, 99)).toBe(99);
    expect(percentile(oneToHundred, 99.9)).toBe(100);
    expect(percentile(oneToHundred, 100)).toBe(100);
    expect(percentile(oneToHundred, 0)).toBe(1);
  });

  it('does not interpolate between samples', () => {
    // Nearest rank of p50 over [1, 2, 3, 4] is the 2nd value; interpolation would give 2.5.
    expect(percentile([4, 1, 3, 2], 50)).toBe(2);
    expect(percentile([10, 20], 75)).toBe(20);
  });

  it('sorts numerically, not as strings', () => {
    // Array.prototype.sort without a comparator would order 10 before 9.
    expect(percentile([10, 9, 100, 1], 50)).toBe(9);
    expect(Array.from(sortedCopy([10, 9, 100, 1]))).toEqual([1, 9, 10, 100]);
  });

  it('does not modify its input', () => {
    const samples = [3, 1, 2];
    percentile(samples, 50);
    expect(samples).toEqual([3, 1, 2]);
  });

  it('handles one sample and no samples', () => {
    expect(percentile([7.5], 1)).toBe(7.5);
    expect(percentile([7.5], 99)).toBe(7.5);
    expect(percentile([], 50)).toBeNaN();
  });

  it('rejects a percentile outside 0..100', () => {
    expect(() => percentileOfSorted([1, 2, 3], -1)).toThrow(InvalidArgumentError);
    expect(() => percentileOfSorted([1, 2, 3], 101)).toThrow(InvalidArgumentError);
    expect(() => percentileOfSorted([1, 2, 3], Number.NaN)).toThrow(InvalidArgumentError);
  });

  it('accepts typed arrays', () => {
    expect(percentile(Float64Array.from([0.5, 0.25, 0.75]), 50)).toBe(0.5);
  });
});

describe('summarize', () => {
  it('gives count, mean, extremes and percentiles', () => {
    const s = summarize(oneToHundred.slice().reverse());
    expect(s).toEqual({ count: 100, min: 1, mean: 50.5, p50: 50, p90: 90, p99: 99, p999: 100, max: 100 });
  });

  it('is NaN but for the count when empty', () => {
    const s = summarize([]);
    expect(s.count).toBe(0);
    for (const v of [s.min, s.mean, s.p50, s.p90, s.p99, s.p999, s.max]) expect(v).toBeNaN();
  });

  it('shows a tail that the median hides', () => {
    const samples = [...Array.from({ length: 990 }, () => 1), ...Array.from({ length: 10 }, () => 50)];
    const s = summarize(samples);
    expect(s.p50).toBe(1);
    expect(s.p99).toBe(1);
    expect(s.p999).toBe(50);
    expect(s.max).toBe(50);
  });
});

describe('rates, ratios, rounding, best', () => {
  it('converts a count over ms to per second', () => {
    expect(ratePerSecond(5000, 1000)).toBe(5000);
    expect(ratePerSecond(100_000, 2500)).toBe(40_000);
    expect(ratePerSecond(10, 0)).toBeNaN();
    expect(ratePerSecond(10, -5)).toBeNaN();
  });

  it('divides only by a positive finite number', () => {
    expect(ratio(80, 100)).toBeCloseTo(0.8);
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(1, Number.NaN)).toBeNaN();
    expect(ratio(1, Number.POSITIVE_INFINITY)).toBeNaN();
  });

  it('rounds for the JSON report and turns non-finite values into null', () => {
    expect(round(1.23456)).toBe(1.235);
    expect(round(0.8004, 3)).toBe(0.8);
    expect(round(41_234.6, 0)).toBe(41_235);
    expect(round(Number.NaN)).toBeNull();
    expect(round(Number.POSITIVE_INFINITY)).toBeNull();
    expect(JSON.stringify({ x: round(Number.NaN) })).toBe('{"x":null}');
  });

  it('picks the largest finite value', () => {
    expect(best([3, 9, 4])).toBe(9);
    expect(best([Number.NaN, 2, Number.POSITIVE_INFINITY, 1])).toBe(2);
    expect(best([-3, -1])).toBe(-1);
    expect(best([])).toBeNaN();
    expect(best([Number.NaN])).toBeNaN();
  });
});
