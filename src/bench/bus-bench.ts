/**
 * The benchmark behind `marketbus bench --json`: marketbus's producer and consumer against the plain
 * node-redis client doing the same work, in one run against one redis-server.
 *
 * - publish: entries/s of XADD (15-field candles of seed 002, explicit IDs `<ts_open ms>-0`, MAXLEN ~ 10080)
 *   over `streams` streams, raw pipelined batches of 500 vs `StreamProducer.publishMany` of the same batches;
 * - consume: entries/s of XREADGROUP (one call over all streams, COUNT 100) plus one XACK per stream and
 *   batch, raw loop vs `StreamConsumer` with a no-op handler, until every entry is acked;
 * - latency: publish-to-handler ms at a steady rate, publisher here, consumer in a child process
 *   (`latency-worker.ts`), raw end to end vs marketbus end to end.
 *
 * Throughput runs alternate raw and marketbus (a warm-up round first, then two measured rounds in ABBA
 * order) and keep the better run of each side, which filters out a noisy neighbour better than a mean
 * would; the Node process's CPU time per entry is reported next to the rates, because it shows the
 * library's own overhead even when other processes compete for the cores.
 * Targets (issue): both throughputs >= 0.8 of raw, marketbus p99 <= 1.2x raw p99.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { XAddOptions } from '@redis/client/dist/lib/commands/XADD.js';
import { InvalidArgumentError, TimeoutError, errorMessage } from '../util/errors.js';
import { BenchFailedError } from './errors.js';
import { sleep } from '../util/sleep.js';
import { closeRedis, connectRedis, isReady, type RedisClient } from '../bus/connection.js';
import { StreamConsumer } from '../bus/consumer.js';
import { StreamProducer } from '../bus/producer.js';
import { RedisServer } from '../bus/redis-server.js';
import type {
  LatencyMode,
  LatencyWorkerConfig,
  ParentMessage,
  RawReadReply,
  WorkerMessage,
} from './latency-worker.js';
import { best, ratePerSecond, ratio, round, summarize, type Summary } from './stats.js';
import { mulberry32 } from '../util/prng.js';

export interface BusBenchOptions {
  /**
   * Redis to run against, `redis://host:port[/db]`. Default: a private redis-server without persistence,
   * started for the run and disposed at its end. Against a shared Redis the bench writes, and deletes
   * again, the streams `md.candles.1m.bench:spot:S<n>`.
   */
  readonly redisUrl?: string;
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

const TARGET_THROUGHPUT_RATIO = 0.8;
const TARGET_P99_RATIO = 1.2;
/** XADDs per pipelined batch, raw and marketbus alike (StreamProducer's default batch size). */
const PUBLISH_BATCH = 500;
/** Candle retention of seed 002 (7 days of 1m candles), applied by both sides. */
const MAXLEN = 10_080;
const RAW_TRIM: XAddOptions = { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: MAXLEN } };
/** XREADGROUP COUNT of the raw consume loops (StreamConsumer's default batch size). */
const READ_COUNT = 100;
/** Measured rounds per throughput phase, after one warm-up round. */
const ROUNDS = 2;
const LATENCY_WARMUP_S = 1;
/** The latency publisher wakes every TICK_MS and sends what the rate says is due (50 entries at 5000/s). */
const TICK_MS = 10;
/** Offsets below this are IPC measurement noise; the processes share one system clock. */
const CLOCK_OFFSET_MIN_MS = 1;
const PHASE_TIMEOUT_MS = 120_000;
const CANDLE_BASE_MS = Date.UTC(2026, 1, 10, 0, 0, 0); // 2026-02-10T00:00:00.000Z
const MINUTE_MS = 60_000;

type Side = 'raw' | 'marketbus';

interface ResolvedOptions {
  readonly redisUrl: string | undefined;
  readonly entries: number;
  readonly streams: number;
  readonly latencyRate: number;
  readonly latencySeconds: number;
  readonly progress: (line: string) => void;
}

interface Ctx extends ResolvedOptions {
  readonly client: RedisClient;
  readonly url: string;
  readonly names: readonly string[];
}

/** One XADD of the bench: fields already built, so payload construction is never timed. */
interface BenchItem {
  readonly stream: string;
  readonly id: string;
  readonly fields: Record<string, string>;
}

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

function resolveOptions(opts: BusBenchOptions): ResolvedOptions {
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

function assemble(
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

// ---- payload -------------------------------------------------------------------------------------

/** `md.candles.1m.bench:spot:S<n>`: catalog candle streams, so the producer applies candle retention itself. */
export function benchStreamNames(count: number): string[] {
  return Array.from({ length: count }, (_, n) => `md.candles.1m.bench:spot:S${n}`);
}

/**
 * `count` candles, entry k on stream k % streams, so each stream gets consecutive minutes and its
 * explicit IDs ascend (an explicit ID at or below the stream top would be a duplicate, not an add).
 */
function makeCandles(count: number, names: readonly string[]): BenchItem[] {
  const rand = mulberry32(2); // seed 002's payload
  const items = new Array<BenchItem>(count);
  for (let k = 0; k < count; k++) {
    const s = k % names.length;
    items[k] = candle(
      names[s] as string,
      s,
      CANDLE_BASE_MS + Math.floor(k / names.length) * MINUTE_MS,
      k,
      rand,
    );
  }
  return items;
}

/** One 1m candle with the 15 fields of seed 002, all strings. */
function candle(stream: string, s: number, tsOpen: number, k: number, rand: () => number): BenchItem {
  const symbol = `S${s}`;
  const open = 100 + s + rand() * 10;
  const close = open * (1 + (rand() - 0.5) * 0.01);
  const high = Math.max(open, close) * (1 + rand() * 0.002);
  const low = Math.min(open, close) * (1 - rand() * 0.002);
  const volume = rand() * 1000;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const fields: Record<string, string> = {
    schema_version: '1',
    market_id: 'bench:spot',
    symbol,
    instrument_key: `bench:spot:${symbol}`,
    ts_open: iso(tsOpen),
    ts_close: iso(tsOpen + MINUTE_MS - 1),
    open: open.toFixed(8),
    high: high.toFixed(8),
    low: low.toFixed(8),
    close: close.toFixed(8),
    volume_base: volume.toFixed(8),
    volume_quote: (volume * close).toFixed(8),
    source: 'bench',
    ingested_at: iso(tsOpen + MINUTE_MS + 250),
    ingest_id: `bench-${k.toString(16).padStart(12, '0')}`,
  };
  return { stream, id: `${tsOpen}-0`, fields };
}

function toBatches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ---- redis helpers -------------------------------------------------------------------------------

async function redisVersionOf(client: RedisClient): Promise<string> {
  const info = await client.info('server');
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
}

/**
 * DEL, not UNLINK: UNLINK frees big streams in a background thread, which on a 2-core machine would
 * compete with the next timed run.
 */
async function deleteStreams(client: RedisClient, names: readonly string[]): Promise<void> {
  await client.del([...names]);
}

async function totalLength(client: RedisClient, names: readonly string[]): Promise<number> {
  const lengths = await Promise.all(names.map((s) => client.xLen(s)));
  return lengths.reduce((a, b) => a + b, 0);
}

async function totalPending(client: RedisClient, names: readonly string[], group: string): Promise<number> {
  const replies = await Promise.all(names.map((s) => client.xPending(s, group)));
  return replies.reduce((a, r) => a + r.pending, 0);
}

async function createGroups(ctx: Ctx, group: string, startId: string): Promise<void> {
  await Promise.all(ctx.names.map((s) => ctx.client.xGroupCreate(s, group, startId, { MKSTREAM: true })));
}

/** Wall-clock and CPU time of one timed section, ms. */
interface Measurement {
  readonly ms: number;
  readonly cpuMs: number;
}

/** Starts timing now; the returned function ends it. */
function stopwatch(): () => Measurement {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return () => {
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { ms, cpuMs: (c.user + c.system) / 1000 };
  };
}

async function pollUntil(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new TimeoutError(what, timeoutMs);
    await sleep(1);
  }
}

// ---- throughput rounds ---------------------------------------------------------------------------

/** Warm-up round (not counted), then ROUNDS measured rounds alternating raw and marketbus. */
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

// ---- publish -------------------------------------------------------------------------------------

async function benchPublish(ctx: Ctx): Promise<ThroughputResult> {
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
  const producer = new StreamProducer(client);
  for (const batch of batches) {
    const outcomes = await producer.publishMany(batch);
    const bad = outcomes.find((r) => r.status !== 'added');
    if (bad) throw new BenchFailedError(`StreamProducer reported ${bad.status} in the publish bench`);
  }
}

// ---- consume -------------------------------------------------------------------------------------

/** Reads the entries the last publish run left (exactly `entries`), each run with its own group from 0. */
async function benchConsume(ctx: Ctx): Promise<ThroughputResult> {
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
  await createGroups(ctx, group, '0');
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

// ---- latency -------------------------------------------------------------------------------------

async function benchLatency(ctx: Ctx): Promise<LatencyResult> {
  const raw = await latencyRun(ctx, 'raw');
  const mb = await latencyRun(ctx, 'marketbus');
  return {
    p50: mb.p50,
    p99: mb.p99,
    raw_p50: raw.p50,
    raw_p99: raw.p99,
    p99_ratio: mb.p99 !== null && raw.p99 !== null ? round(ratio(mb.p99, raw.p99), 3) : null,
    rate_per_s: ctx.latencyRate,
    seconds: ctx.latencySeconds,
    warmup_seconds: LATENCY_WARMUP_S,
    marketbus: mb,
    raw,
  };
}

/** One end-to-end run: fresh streams, a worker reading them, a steady publisher here. */
async function latencyRun(ctx: Ctx, mode: LatencyMode): Promise<LatencyDetail> {
  await deleteStreams(ctx.client, ctx.names); // the worker's groups start at '$' of empty streams
  const worker = await WorkerLink.spawn({
    redisUrl: ctx.url,
    streams: [...ctx.names],
    group: `bench.latency.${mode}`,
    mode,
  });
  try {
    const offset = await worker.clockOffset();
    const sent = await publishSteady(ctx, mode);
    const result = await worker.finish(sent.total, sent.measureFrom);
    if (result.received !== sent.total) {
      throw new BenchFailedError(
        `latency worker (${mode}) handled ${result.received} of ${sent.total} entries (${result.invalid} invalid, ${result.errors} errors)`,
      );
    }
    // The processes share the system clock; correct only for an offset larger than IPC noise.
    const shift = Math.abs(offset) > CLOCK_OFFSET_MIN_MS ? offset : 0;
    const s = summarize(result.samples.map((x) => x - shift));
    ctx.progress(
      `latency ${mode}: ${s.count} samples at ${Math.round(sent.achievedRate)}/s, p50 ${s.p50.toFixed(3)} ms, p99 ${s.p99.toFixed(3)} ms, max ${s.max.toFixed(3)} ms`,
    );
    return detail(s, offset, sent.achievedRate);
  } finally {
    worker.close();
  }
}

function detail(s: Summary, offsetMs: number, achievedRate: number): LatencyDetail {
  return {
    count: s.count,
    mean: round(s.mean),
    p50: round(s.p50),
    p90: round(s.p90),
    p99: round(s.p99),
    p999: round(s.p999),
    max: round(s.max),
    clock_offset_ms: round(offsetMs),
    achieved_rate_per_s: round(achievedRate, 0),
  };
}

/** Epoch ms with sub-ms precision, on the same clock as the worker's. */
function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** XADDs of one tick that failed, with the first reason (a bench with failed XADDs is not valid). */
interface TickFailures {
  readonly count: number;
  readonly first: string | undefined;
}

const NO_FAILURES: TickFailures = { count: 0, first: undefined };

/** Sends one tick's entries; never rejects, so no rejection goes unhandled while later ticks run. */
type TickSender = (items: readonly BenchItem[]) => Promise<TickFailures>;

function tickSender(client: RedisClient, mode: LatencyMode): TickSender {
  if (mode === 'raw') {
    return async (items) => {
      const settled = await Promise.allSettled(
        items.map((it) => client.xAdd(it.stream, it.id, it.fields, RAW_TRIM)),
      );
      const failed = settled.filter((r) => r.status === 'rejected');
      return failed.length === 0
        ? NO_FAILURES
        : { count: failed.length, first: errorMessage(failed[0]?.reason) };
    };
  }
  const producer = new StreamProducer(client);
  return async (items) => {
    const failed = (await producer.publishMany(items)).filter((r) => r.status !== 'added');
    const f = failed[0];
    if (!f) return NO_FAILURES;
    return { count: failed.length, first: f.status === 'error' ? f.error.message : `${f.status} ${f.id}` };
  };
}

/**
 * Publish at `latencyRate` for warm-up + `latencySeconds`: every TICK_MS, send what is due by then
 * (so a late timer catches up instead of lowering the rate), stamped with `sent_at` just before the
 * XADDs are issued. Ticks do not wait for earlier replies: an open loop, like a live feed.
 */
async function publishSteady(
  ctx: Ctx,
  mode: LatencyMode,
): Promise<{ total: number; measureFrom: number; achievedRate: number }> {
  const total = Math.round(ctx.latencyRate * (LATENCY_WARMUP_S + ctx.latencySeconds));
  const items = makeCandles(total, ctx.names);
  const send = tickSender(ctx.client, mode);
  const inFlight: Promise<TickFailures>[] = [];
  const t0 = performance.now();
  let sent = 0;
  for (let tick = 1; sent < total; tick++) {
    await sleep(t0 + tick * TICK_MS - performance.now());
    const due = Math.min(total, Math.floor(((performance.now() - t0) * ctx.latencyRate) / 1000));
    if (due <= sent) continue;
    inFlight.push(send(stamp(items, sent, due)));
    sent = due;
  }
  const elapsedMs = performance.now() - t0;
  const outcomes = await Promise.all(inFlight);
  const failed = outcomes.reduce((a, o) => a + o.count, 0);
  if (failed > 0) {
    const first = outcomes.find((o) => o.count > 0)?.first ?? 'unknown';
    throw new BenchFailedError(
      `latency publisher (${mode}): ${failed} of ${total} XADDs failed, first: ${first}`,
    );
  }
  return {
    total,
    measureFrom: performance.timeOrigin + t0 + LATENCY_WARMUP_S * 1000,
    achievedRate: ratePerSecond(total, elapsedMs),
  };
}

function stamp(items: readonly BenchItem[], from: number, to: number): BenchItem[] {
  const sentAt = epochNow().toFixed(3);
  const out: BenchItem[] = [];
  for (let i = from; i < to; i++) {
    const it = items[i] as BenchItem;
    out.push({ stream: it.stream, id: it.id, fields: { ...it.fields, sent_at: sentAt } });
  }
  return out;
}

// ---- the worker process --------------------------------------------------------------------------

/**
 * How to start latency-worker: from TypeScript sources (this module is a .ts file, run through tsx)
 * the worker needs the tsx loader too; compiled, it is plain JavaScript next to this file.
 */
function workerCommand(): { file: string; execArgv: string[] } {
  const fromSources = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(
    new URL(fromSources ? './latency-worker.ts' : './latency-worker.js', import.meta.url),
  );
  if (!fromSources) return { file, execArgv: [] };
  let loader = 'tsx';
  try {
    loader = import.meta.resolve('tsx'); // absolute, so the worker does not depend on the cwd
  } catch {
    // fall back to resolving 'tsx' from the cwd
  }
  return { file, execArgv: ['--import', loader] };
}

type ResultMessage = Extract<WorkerMessage, { type: 'result' }>;

/** The parent's end of the IPC channel to one latency worker. */
class WorkerLink {
  private readonly inbox: WorkerMessage[] = [];
  private waiter: ((m: WorkerMessage | Error) => void) | undefined;
  private ended: Error | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (raw: unknown) =>
      this.deliver(parseWorkerMessage(raw) ?? new BenchFailedError('latency worker sent an unknown message')),
    );
    // 'close' (not 'exit') comes after the IPC channel is drained, so no message is lost to it.
    child.on('close', (code: number | null, signal: string | null) => {
      this.ended = new BenchFailedError(`latency worker ended (code ${code}, signal ${signal})`);
      this.deliver(this.ended);
    });
    child.on('error', (err: Error) => {
      this.ended = err;
      this.deliver(err);
    });
  }

  static async spawn(cfg: LatencyWorkerConfig): Promise<WorkerLink> {
    const { file, execArgv } = workerCommand();
    // stdout is ignored: the parent's stdout carries the CLI's JSON. stderr shows worker crashes.
    const child = spawn(process.execPath, [...execArgv, file, JSON.stringify(cfg)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced', // Float64Array samples travel as they are
    });
    const link = new WorkerLink(child);
    try {
      await link.expect('ready', 30_000);
    } catch (err) {
      link.close();
      throw err;
    }
    return link;
  }

  /** Worker clock minus ours, ms, from the IPC round trip with the smallest RTT of a few. */
  async clockOffset(): Promise<number> {
    let bestRtt = Number.POSITIVE_INFINITY;
    let offset = 0;
    for (let seq = 0; seq < 20; seq++) {
      const t1 = epochNow();
      this.send({ type: 'clock', seq });
      const reply = await this.expect('clock', 5000);
      const t2 = epochNow();
      if (reply.seq !== seq)
        throw new BenchFailedError(`latency worker answered clock ${reply.seq} to ${seq}`);
      if (t2 - t1 < bestRtt) {
        bestRtt = t2 - t1;
        offset = reply.now - (t1 + t2) / 2;
      }
    }
    return offset;
  }

  async finish(expected: number, measureFrom: number): Promise<ResultMessage> {
    this.send({ type: 'finish', expected, measureFrom, timeoutMs: 30_000 });
    return this.expect('result', 60_000);
  }

  /** Kill the worker if it is still running (it exits by itself after sending its result). */
  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private send(msg: ParentMessage): void {
    if (this.child.connected) this.child.send(msg);
  }

  private deliver(m: WorkerMessage | Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w(m);
    else if (!(m instanceof Error)) this.inbox.push(m);
  }

  private next(timeoutMs: number): Promise<WorkerMessage> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new TimeoutError('latency worker reply', timeoutMs));
      }, timeoutMs);
      this.waiter = (m) => {
        clearTimeout(timer);
        if (m instanceof Error) reject(m);
        else resolve(m);
      };
    });
  }

  private async expect<K extends WorkerMessage['type']>(
    type: K,
    timeoutMs: number,
  ): Promise<Extract<WorkerMessage, { type: K }>> {
    const m = await this.next(timeoutMs);
    if (m.type === 'error') throw new BenchFailedError(`latency worker failed: ${m.message}`);
    if (m.type !== type)
      throw new BenchFailedError(`latency worker sent '${m.type}' where '${type}' was expected`);
    return m as Extract<WorkerMessage, { type: K }>;
  }
}

/** Check a message from the worker: it crosses a process boundary, so it is data, not a trusted type. */
function parseWorkerMessage(v: unknown): WorkerMessage | null {
  if (typeof v !== 'object' || v === null) return null;
  const m = v as Record<string, unknown>;
  const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  switch (m.type) {
    case 'ready':
      return { type: 'ready' };
    case 'clock':
      return isNum(m.seq) && isNum(m.now) ? { type: 'clock', seq: m.seq, now: m.now } : null;
    case 'error':
      return { type: 'error', message: String(m.message) };
    case 'result':
      return m.samples instanceof Float64Array && isNum(m.received) && isNum(m.invalid) && isNum(m.errors)
        ? { type: 'result', samples: m.samples, received: m.received, invalid: m.invalid, errors: m.errors }
        : null;
    default:
      return null;
  }
}
