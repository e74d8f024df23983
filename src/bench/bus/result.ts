/** What `marketbus bench --json` prints, and the targets it is judged by (see BENCHMARKS.md). */
import { availableParallelism } from 'node:os';
import type { ResolvedOptions } from './options.js';

const TARGET_THROUGHPUT_RATIO = 0.8;
const TARGET_P99_RATIO = 1.2;

/** Throughput of one phase. Rates are entries/s (integers), null when a side produced no valid run. */
export interface ThroughputResult {
  /** Best measured marketbus run. */
  readonly marketbus_per_s: number | null;
  /** Best measured raw node-redis run. */
  readonly raw_per_s: number | null;
  /** marketbus_per_s / raw_per_s (target >= 0.8). */
  readonly ratio: number | null;
  /** Every measured run in order (warm-up excluded). */
  readonly runs_per_s: {
    readonly marketbus: readonly (number | null)[];
    readonly raw: readonly (number | null)[];
  };
  /**
   * CPU time (user + system) of this Node process per entry, µs, lowest of the measured runs. Unlike
   * the rates it hardly moves when other processes compete for the cores, so it shows marketbus's
   * own overhead even on a noisy machine.
   */
  readonly cpu_us_per_entry: { readonly marketbus: number | null; readonly raw: number | null };
}

/** One side's latency distribution, ms (rounded to µs). */
export interface LatencyDetail {
  readonly count: number;
  readonly mean: number | null;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly p999: number | null;
  readonly max: number | null;
  /** Worker clock minus ours, ms (estimated over IPC); corrected for only when above 1 ms. */
  readonly clock_offset_ms: number | null;
  /** Publish rate actually achieved over the whole run, entries/s. */
  readonly achieved_rate_per_s: number | null;
}

export interface LatencyResult {
  /** marketbus producer -> StreamConsumer handler, ms. */
  readonly p50: number | null;
  readonly p99: number | null;
  /** node-redis XADD -> raw XREADGROUP loop, ms. */
  readonly raw_p50: number | null;
  readonly raw_p99: number | null;
  /** p99 / raw_p99 (target <= 1.2). */
  readonly p99_ratio: number | null;
  readonly rate_per_s: number;
  readonly seconds: number;
  readonly warmup_seconds: number;
  readonly marketbus: LatencyDetail;
  readonly raw: LatencyDetail;
}

export interface BusBenchResult {
  readonly publish: ThroughputResult;
  readonly consume: ThroughputResult;
  readonly latency_ms: LatencyResult;
  readonly redis_version: string;
  readonly node_version: string;
  readonly entries: number;
  readonly streams: number;
  readonly cpus: number;
  readonly targets: { readonly min_throughput_ratio: number; readonly max_p99_ratio: number };
  readonly pass: { readonly publish: boolean; readonly consume: boolean; readonly latency: boolean };
}

export function assemble(
  o: ResolvedOptions,
  redisVersion: string,
  publish: ThroughputResult,
  consume: ThroughputResult,
  latency: LatencyResult,
): BusBenchResult {
  const atLeast = (x: number | null, min: number): boolean => x !== null && x >= min;
  return {
    publish,
    consume,
    latency_ms: latency,
    redis_version: redisVersion,
    node_version: process.version,
    entries: o.entries,
    streams: o.streams,
    cpus: availableParallelism(),
    targets: { min_throughput_ratio: TARGET_THROUGHPUT_RATIO, max_p99_ratio: TARGET_P99_RATIO },
    pass: {
      publish: atLeast(publish.ratio, TARGET_THROUGHPUT_RATIO),
      consume: atLeast(consume.ratio, TARGET_THROUGHPUT_RATIO),
      latency: latency.p99_ratio !== null && latency.p99_ratio <= TARGET_P99_RATIO,
    },
  };
}
