/**
 * A gap-free candle subscription: one ordered sequence of closed candles of one instrument with no gap
 * and no duplicate, first from the history store, then from the stream (XRANGE up to the live point),
 * then live through a consumer group, handed over by open time (= entry ID). A jump in the live
 * sequence (a missed or deleted minute) is filled from the store, then from `fill` (REST), before later
 * candles are yielded. Progress is a checkpoint in Redis (the last processed open time) plus the
 * group's acks, so a restarted subscription resumes where it left off.
 *
 * Processing contract: a candle counts as processed when the consumer asks for the next one (the
 * generator resumes). Then it is acked (live entries) and checkpointed. A consumer that dies while
 * processing sees that candle again after a restart: at least once; outputs with IDs derived from the
 * candle make the effect exactly once.
 */
import { withDefaults } from '../util/defaults.js';
import { sleep } from '../util/sleep.js';
import { CATALOG_POLICY, keys, streams, type Timeframe } from '../contracts/catalog.js';
import { isCluster, type RedisClient, duplicateRedis } from '../bus/connection.js';
import { moveToDeadLetter } from '../bus/dead-letter.js';
import { ensureGroup } from '../bus/groups.js';
import { isNoGroupReply } from '../bus/redis-errors.js';
import { parseEntries, parseReadReply, type StreamEntry } from '../bus/replies.js';
import { idFromEpochMs } from '../bus/stream-id.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { FiveMinuteBars } from '../marketdata/bars.js';
import { candleCodec } from '../contracts/market-data.js';
import { isMarketOpen } from '../marketdata/market-hours.js';
import { TIMEFRAME_MS, type Candle } from '../contracts/candle.js';
import type { CandleStore } from './store.js';
import { sendCommand } from '../bus/raw-command.js';

export type SubscriptionPhase =
  /** Before the checkpoint of a resumed subscription: already processed once, given again for state (indicators). */
  | 'warmup'
  /** From the history store. */
  | 'history'
  /** From the stream, read with XRANGE up to the live point. */
  | 'stream'
  /** Delivered by the consumer group. */
  | 'live'
  /** A missing minute filled from the store or `fill`. */
  | 'fill';

export interface SubscribedCandle {
  readonly candle: Candle;
  readonly phase: SubscriptionPhase;
}

export interface CandleSubscriptionOptions {
  /** Client for commands (XRANGE, XACK, checkpoint); a duplicate is made for the blocking read. */
  readonly redis: RedisClient;
  /** The candle history read before the stream. */
  readonly store: CandleStore;
  /** The instrument subscribed to. */
  readonly instrumentKey: string;
  /**
   * `1m` or `5m` (history built from stored 1m candles).
   * @defaultValue `1m`
   */
  readonly timeframe?: Timeframe | undefined;
  /**
   * Open time (epoch ms) of the first candle wanted. Ignored when resuming from a checkpoint.
   * @defaultValue none (the live stream, after any warm-up)
   */
  readonly from?: number | undefined;
  /**
   * Candles before the start to give first, candles: on a fresh start the last `warmup` stored candles
   * begin the sequence; on a resume they come as phase `warmup`, ending at the checkpoint.
   * @defaultValue none (no warm-up)
   */
  readonly warmup?: number | undefined;
  /** Consumer group, e.g. `strategy.ma_cross` (naming: docs/contracts.md §5). */
  readonly group: string;
  /** Consumer name within the group. */
  readonly consumer: string;
  /**
   * History for minutes neither the store nor the stream has (e.g. REST klines).
   * @defaultValue none (such minutes stay missing)
   */
  readonly fill?:
    ((instrumentKey: string, fromMs: number, toMs: number) => Promise<readonly Candle[]>) | undefined;
  /**
   * Largest gap filled at once, candles; a larger one is logged and skipped.
   * @defaultValue 1440
   */
  readonly maxFillCandles?: number | undefined;
  /**
   * XREADGROUP BLOCK, ms.
   * @defaultValue 1000
   */
  readonly blockMs?: number | undefined;
  /**
   * Page size of history and XRANGE reads, entries.
   * @defaultValue 1000
   */
  readonly pageSize?: number | undefined;
  /**
   * Ends the subscription when aborted.
   * @defaultValue none (runs until the consumer stops)
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Clock, epoch ms.
   * @defaultValue `Date.now`
   */
  readonly now?: (() => number) | undefined;
  /**
   * Where read failures and skipped gaps are logged.
   * @defaultValue none (not logged)
   */
  readonly log?: Logger | undefined;
}

/** The defaults of {@link CandleSubscriptionOptions}, applied by `subscribeCandles`. */
export const CANDLE_SUBSCRIPTION_DEFAULTS = Object.freeze({
  timeframe: '1m',
  maxFillCandles: 1440,
  blockMs: 1000,
  pageSize: 1000,
  now: Date.now,
} satisfies Partial<CandleSubscriptionOptions>);

interface Pending {
  readonly candle: Candle;
  readonly entryId?: string;
}

export async function* subscribeCandles(
  opts: CandleSubscriptionOptions,
): AsyncGenerator<SubscribedCandle, void, undefined> {
  const o = withDefaults(CANDLE_SUBSCRIPTION_DEFAULTS, opts);
  const tf: Timeframe = o.timeframe;
  const step = TIMEFRAME_MS[tf];
  const stream = streams.candles(tf, o.instrumentKey);
  const cpKey = keys.subscriptionCheckpoint(o.group, stream);
  const now = o.now;
  const page = o.pageSize;
  const signal = o.signal;
  const aborted = (): boolean => signal?.aborted ?? false;

  // The group exists before history is read: whatever is added from now on reaches it.
  await ensureGroup(o.redis, stream, o.group, '$');
  const cpRaw = await o.redis.get(cpKey);
  const checkpoint = cpRaw === null ? null : Number(cpRaw);

  let lastTs: number;
  if (checkpoint !== null && Number.isFinite(checkpoint)) {
    lastTs = checkpoint;
    if (o.warmup) {
      for (const c of await lastCandles(o.store, o.instrumentKey, tf, o.warmup, checkpoint + step))
        yield { candle: c, phase: 'warmup' };
    }
  } else if (o.from !== undefined) {
    lastTs = Math.floor(o.from / step) * step - step;
  } else if (o.warmup) {
    const warm = await lastCandles(o.store, o.instrumentKey, tf, o.warmup, Math.floor(now() / step) * step);
    lastTs = (warm[0]?.tsOpen ?? Math.floor(now() / step) * step) - step;
  } else {
    lastTs = Math.floor(now() / step) * step - step;
  }

  /** Yield one candle in sequence (filling a jump first); mark it processed when the consumer comes back. */
  async function* emit(
    p: Pending,
    phase: SubscriptionPhase,
  ): AsyncGenerator<SubscribedCandle, void, undefined> {
    const c = p.candle;
    if (c.tsOpen <= lastTs) {
      if (p.entryId) await ack(p.entryId);
      return;
    }
    if (c.tsOpen > lastTs + step && lastTs >= 0) yield* fillGap(lastTs + step, c.tsOpen);
    if (c.tsOpen <= lastTs) return;
    yield { candle: c, phase };
    lastTs = c.tsOpen;
    await done(p.entryId);
  }

  async function* fillGap(fromMs: number, toMs: number): AsyncGenerator<SubscribedCandle, void, undefined> {
    if ((toMs - fromMs) / step > o.maxFillCandles) {
      o.log?.warn(
        {
          instrument: o.instrumentKey,
          from: new Date(fromMs).toISOString(),
          to: new Date(toMs).toISOString(),
        },
        'gap too large to fill; skipped',
      );
      return;
    }
    const have = await historyRange(o.store, o.instrumentKey, tf, fromMs, toMs);
    const missing = expectedOpens(o.instrumentKey, fromMs, toMs, step).filter(
      (t) => !have.some((c) => c.tsOpen === t),
    );
    let extra: readonly Candle[] = [];
    if (missing.length > 0 && o.fill && tf === '1m') {
      try {
        extra = await o.fill(
          o.instrumentKey,
          missing[0] ?? fromMs,
          (missing[missing.length - 1] ?? fromMs) + step,
        );
      } catch (err) {
        o.log?.warn(
          { err: errorMessage(err), instrument: o.instrumentKey },
          'gap fill from the source failed',
        );
      }
    }
    const all = [...have, ...extra]
      .filter((c) => c.tsOpen >= fromMs && c.tsOpen < toMs)
      .sort((a, b) => a.tsOpen - b.tsOpen);
    const left = missing.filter((t) => !all.some((c) => c.tsOpen === t));
    if (left.length > 0)
      o.log?.warn(
        { instrument: o.instrumentKey, minutes: left.length, from: new Date(left[0] ?? 0).toISOString() },
        'gap could not be filled',
      );
    for (const c of all) {
      if (c.tsOpen <= lastTs) continue;
      yield { candle: c, phase: 'fill' };
      lastTs = c.tsOpen;
      await done(undefined);
    }
  }

  async function done(entryId: string | undefined): Promise<void> {
    try {
      if (entryId) await o.redis.multi().xAck(stream, o.group, entryId).set(cpKey, String(lastTs)).exec();
      else await o.redis.set(cpKey, String(lastTs));
    } catch (err) {
      // Redis trouble: the candle may come again after a restart (at least once).
      o.log?.warn({ err: errorMessage(err) }, 'subscription checkpoint failed');
    }
  }

  async function ack(entryId: string): Promise<void> {
    await o.redis.xAck(stream, o.group, entryId).catch(() => undefined);
  }

  function decode(e: StreamEntry): Candle | null {
    try {
      return candleCodec.decode(e.fields).candle;
    } catch (err) {
      void moveToDeadLetter(
        o.redis,
        {
          stream,
          group: o.group,
          entryId: e.id,
          consumer: o.consumer,
          deliveries: 1,
          reason: 'decode',
          error: err,
          fields: e.fields,
        },
        { policy: CATALOG_POLICY },
      ).catch(() => undefined);
      return null;
    }
  }

  // 1. History store.
  for (;;) {
    if (aborted()) return;
    const batch = await historyRange(
      o.store,
      o.instrumentKey,
      tf,
      lastTs + step,
      Number.MAX_SAFE_INTEGER,
      page,
    );
    if (batch.length === 0) break;
    for (const c of batch) yield* emit({ candle: c }, 'history');
    if (batch.length < page) break;
  }

  // 2. The stream, up to its current end.
  for (;;) {
    if (aborted()) return;
    const entries = parseEntries(
      await sendCommand(o.redis, [
        'XRANGE',
        stream,
        `(${idFromEpochMs(Math.max(0, lastTs))}`,
        '+',
        'COUNT',
        String(page),
      ]),
    ).entries;
    for (const e of entries) {
      const c = decode(e);
      if (c) yield* emit({ candle: c }, 'stream');
    }
    if (entries.length < page) break;
  }

  // 3. Live through the group: this consumer's own pending entries first, then new ones.
  const reader = duplicateRedis(o.redis);
  reader.on('error', () => undefined);
  await reader.connect();
  // On a cluster the blocked read sits on one node's connection: cut it instead of CLIENT UNBLOCK.
  const readerId = isCluster(reader) ? undefined : await reader.clientId();
  const onAbort = (): void => {
    if (readerId === undefined) reader.destroy();
    else void sendCommand(o.redis, ['CLIENT', 'UNBLOCK', String(readerId)]).catch(() => reader.destroy());
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let cursor = '0';
    while (!aborted()) {
      let reply: unknown;
      try {
        reply = await reader.xReadGroup(o.group, o.consumer, [{ key: stream, id: cursor }], {
          COUNT: 100,
          ...(cursor === '>' ? { BLOCK: o.blockMs } : {}),
        });
      } catch (err) {
        if (aborted()) break;
        if (isNoGroupReply(err)) await ensureGroup(o.redis, stream, o.group, '0');
        else {
          o.log?.warn({ err: errorMessage(err) }, 'subscription read failed; retrying');
          await sleep(500, signal);
        }
        continue;
      }
      const batches = parseReadReply(reply);
      const entries = batches.flatMap((b) => b.entries);
      for (const id of batches.flatMap((b) => b.deletedIds)) await ack(id);
      if (cursor === '0' && entries.length === 0) cursor = '>';
      for (const e of entries) {
        const c = decode(e);
        if (c) yield* emit({ candle: c, entryId: e.id }, 'live');
        else await ack(e.id);
        if (cursor === '0') cursor = e.id; // page through our own pending list
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.destroy();
  }
}

/** Open times a timeframe's candles should have in [from, to) while the market is open. */
function expectedOpens(instrumentKey: string, fromMs: number, toMs: number, step: number): number[] {
  const out: number[] = [];
  for (let t = fromMs; t < toMs; t += step) if (isMarketOpen(instrumentKey, t)) out.push(t);
  return out;
}

/** Candles of a timeframe from the store (5m built from 1m, complete buckets only). */
export async function historyRange(
  store: CandleStore,
  key: string,
  tf: Timeframe,
  fromMs: number,
  toMs: number,
  limit?: number,
): Promise<Candle[]> {
  if (tf === '1m') return store.range(key, fromMs, toMs, limit);
  const step = TIMEFRAME_MS[tf];
  const from = Math.ceil(fromMs / step) * step;
  const m1 = await store.range(key, from, toMs, limit === undefined ? undefined : limit * 5);
  const bars = new FiveMinuteBars();
  const out = m1.flatMap((c) => bars.add(c)).filter((b) => b.tsOpen >= from && b.tsOpen < toMs);
  return limit === undefined ? out : out.slice(0, limit);
}

async function lastCandles(
  store: CandleStore,
  key: string,
  tf: Timeframe,
  count: number,
  beforeMs: number,
): Promise<Candle[]> {
  if (tf === '1m') return store.last(key, count, beforeMs);
  const m1 = await store.last(key, count * 5, beforeMs);
  const bars = new FiveMinuteBars();
  return m1.flatMap((c) => bars.add(c)).slice(-count);
}
