/**
 * The throughput phases: publish (XADD batches, raw node-redis vs `StreamProducer.publishMany`) and
 * consume (XREADGROUP + XACK, raw loop vs `StreamConsumer` with a no-op handler), each run in
 * alternating rounds that keep the better run of each side.
 */
import type { RedisClient } from '../../bus/connection.js';
import { StreamConsumer } from '../../bus/consumer.js';
import { StreamProducer } from '../../bus/producer.js';
import { best, ratePerSecond, ratio, round } from '../stats.js';
import type { RawReadReply } from './latency-worker.js';
import type { Ctx, Side } from './options.js';
import { makeCandles, RAW_TRIM, toBatches, type BenchItem } from './payload.js';
import { createGroups, deleteStreams, totalLength, totalPending } from './redis.js';
import type { ThroughputResult } from './result.js';
import { pollUntil, stopwatch, type Measurement } from './timing.js';
import { CATALOG_POLICY } from '../../contracts/catalog.js';
import { BenchFailedError } from '../errors.js';

/** XADDs per pipelined batch, raw and marketbus alike (StreamProducer's default batch size). */
const PUBLISH_BATCH = 500;
/** XREADGROUP COUNT of the raw consume loops (StreamConsumer's default batch size). */
const READ_COUNT = 100;
/** Measured rounds per throughput phase, after one warm-up round. */
const ROUNDS = 2;
const PHASE_TIMEOUT_MS = 120_000;

/**
 * Warm-up round (not counted), then ROUNDS measured rounds, alternating raw and marketbus in ABBA
 * order: a drift over the rounds (heap growth, node-redis's per-command timeout timers of the runs
 * before) then hits both sides alike instead of always the side that runs second.
 */
async function alternate(
  ctx: Ctx,
  phase: string,
  run: Record<Side, (tag: string) => Promise<Measurement>>,
): Promise<ThroughputResult> {
  const rates: Record<Side, number[]> = { raw: [], marketbus: [] };
  const cpu: Record<Side, number[]> = { raw: [], marketbus: [] };
  for (let r = 0; r <= ROUNDS; r++) {
    const order: readonly Side[] = r % 2 === 0 && r > 0 ? ['marketbus', 'raw'] : ['raw', 'marketbus'];
    for (const side of order) {
      const m = await run[side](r === 0 ? 'warmup' : String(r));
      const perS = ratePerSecond(ctx.entries, m.ms);
      const cpuUs = (m.cpuMs * 1000) / ctx.entries;
      ctx.progress(
        `${phase} ${side} ${r === 0 ? 'warm-up' : `#${r}`}: ${Math.round(perS)} entries/s, ${cpuUs.toFixed(2)} µs CPU/entry`,
      );
      if (r === 0) continue;
      rates[side].push(perS);
      cpu[side].push(cpuUs);
    }
  }
  const mb = best(rates.marketbus);
  const raw = best(rates.raw);
  const leastCpu = (xs: number[]): number | null => round(-best(xs.map((x) => -x)), 2);
  return {
    marketbus_per_s: round(mb, 0),
    raw_per_s: round(raw, 0),
    ratio: round(ratio(mb, raw), 3),
    runs_per_s: {
      marketbus: rates.marketbus.map((x) => round(x, 0)),
      raw: rates.raw.map((x) => round(x, 0)),
    },
    cpu_us_per_entry: { marketbus: leastCpu(cpu.marketbus), raw: leastCpu(cpu.raw) },
  };
}

export async function benchPublish(ctx: Ctx): Promise<ThroughputResult> {
  const batches = toBatches(makeCandles(ctx.entries, ctx.names), PUBLISH_BATCH);
  return alternate(ctx, 'publish', {
    raw: () => timedPublish(ctx, batches, rawPublish),
    marketbus: () => timedPublish(ctx, batches, producerPublish),
  });
}

/** Publish into empty streams (each run reuses the same explicit IDs) and check every entry landed. */
async function timedPublish(
  ctx: Ctx,
  batches: readonly (readonly BenchItem[])[],
  publish: (client: RedisClient, batches: readonly (readonly BenchItem[])[]) => Promise<void>,
): Promise<Measurement> {
  await deleteStreams(ctx.client, ctx.names);
  const stop = stopwatch();
  await publish(ctx.client, batches);
  const m = stop();
  const length = await totalLength(ctx.client, ctx.names);
  if (length !== ctx.entries)
    throw new BenchFailedError(`publish run left ${length} entries, expected ${ctx.entries}`);
  return m;
}

/** node-redis alone: a batch of XADDs issued in one tick (auto-pipelined), then awaited together. */
async function rawPublish(client: RedisClient, batches: readonly (readonly BenchItem[])[]): Promise<void> {
  for (const batch of batches) {
    const pending: Promise<string>[] = [];
    for (const it of batch) pending.push(client.xAdd(it.stream, it.id, it.fields, RAW_TRIM));
    await Promise.all(pending);
  }
}

async function producerPublish(
  client: RedisClient,
  batches: readonly (readonly BenchItem[])[],
): Promise<void> {
  const producer = new StreamProducer(client, { policy: CATALOG_POLICY });
  for (const batch of batches) {
    const outcomes = await producer.publishMany(batch);
    const bad = outcomes.find((r) => r.status !== 'added');
    if (bad) throw new BenchFailedError(`StreamProducer reported ${bad.status} in the publish bench`);
  }
}

/** Reads the entries the last publish run left (exactly `entries`), each run with its own group from 0. */
export async function benchConsume(ctx: Ctx): Promise<ThroughputResult> {
  return alternate(ctx, 'consume', {
    raw: (tag) => timedConsume(ctx, `bench.raw.${tag}`, rawConsume),
    marketbus: (tag) => timedConsume(ctx, `bench.marketbus.${tag}`, marketbusConsume),
  });
}

async function timedConsume(
  ctx: Ctx,
  group: string,
  consume: (ctx: Ctx, group: string) => Promise<Measurement>,
): Promise<Measurement> {
  await createGroups(ctx.client, ctx.names, group, '0');
  const m = await consume(ctx, group);
  const pending = await totalPending(ctx.client, ctx.names, group);
  if (pending !== 0) throw new BenchFailedError(`consume run ${group} left ${pending} entries pending`);
  return m;
}

/** Handing an entry to a handler that does nothing; kept out of line so the loop cannot drop it. */
function noop(_fields: Readonly<Record<string, string>>): void {
  // intentionally empty
}

/** node-redis alone: XREADGROUP over all streams, then one XACK per stream of the batch, until all are read. */
async function rawConsume(ctx: Ctx, group: string): Promise<Measurement> {
  const keys = ctx.names.map((key) => ({ key, id: '>' }));
  let read = 0;
  const stop = stopwatch();
  while (read < ctx.entries) {
    const reply = (await ctx.client.xReadGroup(group, 'bench', keys, { COUNT: READ_COUNT })) as RawReadReply;
    if (!reply || reply.length === 0)
      throw new BenchFailedError(`raw consume: streams ran dry after ${read} of ${ctx.entries}`);
    const acks: Promise<number>[] = [];
    for (const s of reply) {
      const ids = new Array<string>(s.messages.length);
      s.messages.forEach((m, i) => {
        noop(m.message);
        ids[i] = m.id;
      });
      read += ids.length;
      if (ids.length > 0) acks.push(ctx.client.xAck(s.name, group, ids));
    }
    await Promise.all(acks);
  }
  return stop();
}

/**
 * StreamConsumer with a no-op handler, timed from start() returning (group checks and the reader
 * connection are one-time setup) until every entry was handled and its ack confirmed.
 */
async function marketbusConsume(ctx: Ctx, group: string): Promise<Measurement> {
  let handled = 0;
  const consumer = new StreamConsumer(ctx.client, {
    policy: CATALOG_POLICY,
    group,
    consumer: 'bench',
    streams: ctx.names,
    startId: '0',
    handler: () => {
      handled++;
    },
  });
  await consumer.start();
  const stop = stopwatch();
  try {
    // In-flight drops only after a batch's XACK replied, so this is "handled and acked".
    await pollUntil(
      () => handled >= ctx.entries && consumer.inFlightCount === 0,
      PHASE_TIMEOUT_MS,
      'StreamConsumer to ack every entry',
    );
    let m = stop();
    // Should never wait: the check is there so that a lost ack shows up as time, not as a wrong rate.
    if ((await totalPending(ctx.client, ctx.names, group)) > 0) {
      await pollUntil(
        async () => (await totalPending(ctx.client, ctx.names, group)) === 0,
        PHASE_TIMEOUT_MS,
        'pending to reach 0',
      );
      m = stop();
    }
    return m;
  } finally {
    await consumer.close();
  }
}
