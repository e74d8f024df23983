/**
 * The latency phase: publish-to-handler ms at a steady rate, the publisher here and the consumer in a
 * child process (`latency-worker.ts`, so the two do not share an event loop), raw end to end vs
 * marketbus end to end.
 */
import { performance } from 'node:perf_hooks';
import type { RedisClient } from '../../bus/connection.js';
import { StreamProducer } from '../../bus/producer.js';
import { errorMessage } from '../../util/errors.js';
import { sleep } from '../../util/sleep.js';
import { ratePerSecond, ratio, round, summarize, type Summary } from '../stats.js';
import type { LatencyMode } from './latency-worker.js';
import { clockOffset, finishLatencyWorker, spawnLatencyWorker } from './latency-link.js';
import type { Ctx } from './options.js';
import { makeCandles, RAW_TRIM, type BenchItem } from './payload.js';
import { deleteStreams } from './redis.js';
import type { LatencyDetail, LatencyResult } from './result.js';
import { epochNow } from './timing.js';
import { CATALOG_POLICY } from '../../contracts/catalog.js';
import { BenchFailedError } from '../errors.js';

const LATENCY_WARMUP_S = 1;
/** The latency publisher wakes every TICK_MS and sends what the rate says is due (50 entries at 5000/s). */
const TICK_MS = 10;
/** Offsets below this are IPC measurement noise; the processes share one system clock. */
const CLOCK_OFFSET_MIN_MS = 1;

export async function benchLatency(ctx: Ctx): Promise<LatencyResult> {
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
  const worker = await spawnLatencyWorker({
    redisUrl: ctx.url,
    streams: [...ctx.names],
    group: `bench.latency.${mode}`,
    mode,
  });
  try {
    const offset = await clockOffset(worker);
    const sent = await publishSteady(ctx, mode);
    const result = await finishLatencyWorker(worker, sent.total, sent.measureFrom);
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
    // It exits by itself after sending its result; this ends it on the way out of an error.
    worker.kill();
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
  const producer = new StreamProducer(client, { policy: CATALOG_POLICY });
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
