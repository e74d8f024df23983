/** The options of `marketbus bench` and the context its phases share. */
import type { RedisClient } from '../../bus/connection.js';
import { InvalidArgumentError } from '../../util/errors.js';

export interface BusBenchOptions {
  /**
   * Redis to run against, `redis://host:port[/db]`. Default: a private redis-server without persistence,
   * started for the run and disposed at its end. Against a shared Redis the bench writes, and deletes
   * again, the streams `md.candles.1m.bench:spot:S<n>`.
   */
  readonly redisUrl?: string | undefined;
  /** Entries published, and consumed, per throughput run, spread round-robin over the streams. Count; default 100_000. */
  readonly entries?: number;
  /** Streams written and read (`md.candles.1m.bench:spot:S0` ...). Count; default 100. */
  readonly streams?: number;
  /** Steady publish rate of the latency runs, entries/s; default 5000. */
  readonly latencyRate?: number;
  /** Measured length of each latency run, seconds, after a 1 s warm-up that is not counted; default 10. */
  readonly latencySeconds?: number;
  /** Receives human-readable progress lines, e.g. to write to stderr. Default: none. */
  readonly onProgress?: (line: string) => void;
}

export type Side = 'raw' | 'marketbus';

export interface ResolvedOptions {
  readonly redisUrl: string | undefined;
  readonly entries: number;
  readonly streams: number;
  readonly latencyRate: number;
  readonly latencySeconds: number;
  readonly progress: (line: string) => void;
}

export interface Ctx extends ResolvedOptions {
  readonly client: RedisClient;
  readonly url: string;
  readonly names: readonly string[];
}

export function resolveOptions(opts: BusBenchOptions): ResolvedOptions {
  const positive = (name: string, v: number, integer: boolean): number => {
    if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
      throw new InvalidArgumentError(
        `bench ${name}`,
        `must be a positive ${integer ? 'integer' : 'number'}, got ${v}`,
      );
    }
    return v;
  };
  return {
    redisUrl: opts.redisUrl,
    entries: positive('entries', opts.entries ?? 100_000, true),
    streams: positive('streams', opts.streams ?? 100, true),
    latencyRate: positive('latencyRate', opts.latencyRate ?? 5000, false),
    latencySeconds: positive('latencySeconds', opts.latencySeconds ?? 10, false),
    progress: opts.onProgress ?? (() => undefined),
  };
}
