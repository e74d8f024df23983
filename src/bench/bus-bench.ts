/**
 * The benchmark behind `marketbus bench --json`: marketbus's producer and consumer against the plain
 * node-redis client doing the same work, in one run against one redis-server.
 *
 * - publish: entries/s of XADD (15-field contract candles, explicit IDs `<ts_open ms>-0`, MAXLEN ~ 10080)
 *   over `streams` streams, raw pipelined batches of 500 vs `StreamProducer.publishMany` of the same batches;
 * - consume: entries/s of XREADGROUP (one call over all streams, COUNT 100) plus one XACK per stream and
 *   batch, raw loop vs `StreamConsumer` with a no-op handler, until every entry is acked;
 * - latency: publish-to-handler ms at a steady rate, publisher here, consumer in a child process
 *   (`bus/latency-worker.ts`), raw end to end vs marketbus end to end.
 *
 * Throughput runs alternate raw and marketbus (a warm-up round first, then two measured rounds in ABBA
 * order) and keep the better run of each side, which filters out a noisy neighbour better than a mean
 * would; the Node process's CPU time per entry is reported next to the rates, because it shows the
 * library's own overhead even when other processes compete for the cores.
 * Targets (issue): both throughputs >= 0.8 of raw, marketbus p99 <= 1.2x raw p99.
 *
 * The pieces, in `bus/`: `options.ts`, `payload.ts` (the candles), `redis.ts`, `timing.ts`,
 * `throughput.ts` (publish and consume rounds), `latency.ts` with `latency-link.ts` and
 * `latency-worker.ts` (the child), `result.ts` (the report); this file runs them in order.
 */
import { closeRedis, connectRedis, isReady, type RedisClient } from '../bus/connection.js';
import { RedisServer } from '../bus/redis-server.js';
import { benchLatency } from './bus/latency.js';
import { resolveOptions, type BusBenchOptions, type Ctx } from './bus/options.js';
import { benchStreamNames } from './bus/payload.js';
import { deleteStreams, redisVersionOf } from './bus/redis.js';
import { assemble, type BusBenchResult } from './bus/result.js';
import { benchConsume, benchPublish } from './bus/throughput.js';

export type { BusBenchOptions } from './bus/options.js';
export type { BusBenchResult } from './bus/result.js';

export async function runBusBench(opts: BusBenchOptions = {}): Promise<BusBenchResult> {
  const o = resolveOptions(opts);
  const server = o.redisUrl === undefined ? await RedisServer.start({ persistence: 'none' }) : undefined;
  const url = o.redisUrl ?? (server as RedisServer).url;
  let client: RedisClient | undefined;
  try {
    client = await connectRedis({ url, clientName: 'marketbus-bench' });
    const ctx: Ctx = { ...o, client, url, names: benchStreamNames(o.streams) };
    const redisVersion = await redisVersionOf(client);
    o.progress(
      `bench: redis ${redisVersion}, node ${process.version}, ${o.entries} entries over ${o.streams} streams`,
    );
    const publish = await benchPublish(ctx);
    const consume = await benchConsume(ctx);
    const latency = await benchLatency(ctx);
    return assemble(o, redisVersion, publish, consume, latency);
  } finally {
    if (client && isReady(client))
      await deleteStreams(client, benchStreamNames(o.streams)).catch(() => undefined);
    if (client) await closeRedis(client);
    await server?.dispose();
  }
}
