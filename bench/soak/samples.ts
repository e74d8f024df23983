/**
 * Latency figures of the soak's probes: how a series of samples (src/bench/latency-samples.ts, ms) is rounded
 * for the report, and the rule that says when an entry was published.
 */
import { round } from '../../src/bench/stats.js';
import type { LatencySamples } from '../../src/bench/latency-samples.js';

/** Latency figures of one series, ms, rounded for the JSON report (null for no samples). */
export interface LatencySummary {
  readonly count: number;
  readonly p50_ms: number | null;
  readonly p90_ms: number | null;
  readonly p99_ms: number | null;
  readonly p999_ms: number | null;
  readonly max_ms: number | null;
  readonly mean_ms: number | null;
}

/** The report's figures of `samples` (ms): percentiles and max to 0.1 ms, the mean to 0.01 ms. */
export function latencySummary(samples: LatencySamples): LatencySummary {
  const s = samples.summary();
  return {
    count: s.count,
    p50_ms: round(s.p50, 1),
    p90_ms: round(s.p90, 1),
    p99_ms: round(s.p99, 1),
    p999_ms: round(s.p999, 1),
    max_ms: round(s.max, 1),
    mean_ms: round(s.mean, 2),
  };
}

/** Epoch ms of the `<ms>-<seq>` stream entry ID. */
export function idMs(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/**
 * When an entry was published, epoch ms. Candle streams have deterministic IDs (the candle's open time,
 * docs/contracts.md §6), so their publish time is the feed's `ingested_at` (set when the candle entered the
 * feed's outbox, so a wait there counts); every other stream has Redis-assigned IDs, whose time part is
 * Redis's clock at the XADD. Both are whole milliseconds of the same machine's wall clock; receivers stamp
 * with `Date.now()` too, so the truncations cancel on average and the resolution is 1 ms.
 */
export function publishedAt(stream: string, id: string, fields: Readonly<Record<string, string>>): number {
  if (stream.startsWith('md.candles.')) {
    const at = fields['ingested_at'];
    return at === undefined ? Number.NaN : Date.parse(at);
  }
  return idMs(id);
}
