/**
 * The strategy live runner end to end: simulated feed -> history + candle stream -> runner -> per-user
 * event and metric streams, checked against an independent computation over the same candles; two
 * runner processes with one SIGKILLed; Telegram notices to a local Bot API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricSum } from '../helpers/fixtures.js';
import { CATALOG_POLICY, streams } from '../../src/contracts/catalog.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { leaseOwner } from '../../src/bus/lease.js';
import { StreamProducer } from '../../src/bus/producer.js';
import { confirmChat, ensureUser } from '../../src/api/auth/identity-store.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { createStrategy, getRun } from '../../src/strategy/store.js';
import { HistoryWriter } from '../../src/history/writer.js';
import { silentLogger } from '../../src/util/log.js';
import { FeedMetrics } from '../../src/marketdata/feed-metrics.js';
import { FeedService } from '../../src/marketdata/feed.js';
import { createSimulatedSource } from '../../src/marketdata/sources/simulated.js';
import { startRunner } from '../../src/app/runner.js';
import { sendStrategyCommand } from '../../src/strategy/commands.js';
import { outputCodec } from '../../src/strategy/outputs.js';
import { referenceSignals } from '../../src/strategy/reference.js';
import { parseStrategySpec } from '../../src/strategy/spec.js';
import { FakeTelegram, FAKE_BOT_TOKEN } from '../helpers/fake-telegram.js';
import { startPostgres } from '../helpers/postgres.js';
import {
  connect,
  startRedis,
  uniq,
  waitFor,
  type TestRedis,
  redisOptions,
  redisEnv,
} from '../helpers/redis.js';

const M = 60_000;
const KEY = 'sim:spot:BTCUSDT';
let server: TestRedis;
let redis: RedisClient;
let dbUrl: string;
let db: RelationalDb;
let feed: FeedService;
let writer: HistoryWriter;
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
  dbUrl = (await startPostgres()).url;
  db = openRelationalDb({ databaseUrl: dbUrl }, silentLogger);
  await db.migrate();
  writer = new HistoryWriter(db.candles, { flushIntervalMs: 50 });
  writer.start();
  feed = new FeedService({
    source: createSimulatedSource({
      instruments: [KEY],
      speed: 600,
      tickIntervalMs: 20_000,
      maxTicksPerSecond: 1,
    }),
    producer: new StreamProducer(redis, { policy: CATALOG_POLICY }),
    redis,
    metrics: new FeedMetrics(new Registry()),
    log: silentLogger,
    candleSinks: [(c) => writer.offer(c)],
  });
  await feed.start();
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await feed.close();
  await writer.close();
  await db.close();
});

const PAYLOAD = {
  instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
  instrument_key: KEY,
  market_type: 'spot',
  timeframe: '1m',
  indicators: [{ name: 'MA', params: { fast: 3, slow: 8 } }],
  signal_template: 'MA(3,8)',
};

interface Out {
  readonly type: string;
  readonly id: string;
  readonly runId: string;
  readonly ts: number | null;
  readonly payload: Record<string, unknown>;
}

async function outputs(stream: string, runId: string): Promise<Out[]> {
  return (await redis.xRange(stream, '-', '+'))
    .map((e) => outputCodec.decode(e.message))
    .filter((env) => env.payload['run_id'] === runId)
    .map((env) => {
      const candle = env.payload['candle'] as { ts_open?: string } | null | undefined;
      const tsText = typeof env.payload['ts_open'] === 'string' ? env.payload['ts_open'] : candle?.ts_open;
      return {
        type: env.type,
        id: env.id,
        runId,
        ts: tsText ? Date.parse(tsText) : null,
        payload: env.payload,
      };
    });
}

/** Events and metrics of a run against the reference computation over the stored candles. */
async function checkRun(userId: string, runId: string, lastTs: number): Promise<{ signals: number }> {
  const metrics = (await outputs(streams.strategyMetrics(userId), runId)).filter(
    (m) => (m.ts ?? 0) <= lastTs,
  );
  const ts = metrics.map((m) => m.ts ?? 0);
  expect(ts.length).toBeGreaterThan(20);
  for (let i = 1; i < ts.length; i++) expect((ts[i] ?? 0) - (ts[i - 1] ?? 0)).toBe(M); // each minute once, in order

  const spec = parseStrategySpec(PAYLOAD);
  const first = ts[0] ?? 0;
  // The history writer flushes every 50 ms: let the store hold every candle the runner has seen.
  await waitFor(async () => ((await db.candles.bounds(KEY))?.last ?? 0) >= lastTs, 10_000, 'store caught up');
  const candles = await db.candles.range(KEY, first - 100 * M, lastTs + M);
  const ref = referenceSignals(
    spec.template,
    candles.map((c) => c.close),
  );
  const expected = candles
    .map((c, i) => ({ ts: c.tsOpen, signal: ref[i]?.signal ?? null }))
    .filter((x) => x.signal !== null && x.ts >= first && x.ts <= lastTs);

  const events = await outputs(streams.strategyEvents(userId), runId);
  expect(events[0]?.type).toBe('started');
  expect(events.filter((e) => e.type === 'started')).toHaveLength(1);
  const signals = events
    .filter((e) => e.type === 'signal' && (e.ts ?? 0) <= lastTs)
    .map((e) => ({ ts: e.ts, signal: e.payload['signal'] }));
  expect(signals).toEqual(expected);
  // every event once: no two entries with the same id
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  // trades alternate open/close and sit on signal candles
  const trades = events.filter((e) => e.type.startsWith('trade_') && (e.ts ?? 0) <= lastTs);
  trades.forEach((t, i) => expect(t.type).toBe(i % 2 === 0 ? 'trade_open' : 'trade_close'));
  for (const t of trades) expect(expected.some((s) => s.ts === t.ts)).toBe(true);
  return { signals: signals.length };
}

async function metricCount(userId: string, runId: string): Promise<number> {
  return (await outputs(streams.strategyMetrics(userId), runId)).length;
}

async function lastMetricTs(userId: string, runId: string): Promise<number> {
  const m = await outputs(streams.strategyMetrics(userId), runId);
  return m[m.length - 1]?.ts ?? 0;
}

describe('strategy live runner', () => {
  it('simulated feed -> runner -> events and metrics per user; signals match an independent computation; notices reach a confirmed chat only', async () => {
    const tg = await FakeTelegram.start();
    const registry = new Registry();
    const rt = await startRunner({
      redis: redisOptions(server),
      db: db.sql,
      candles: db.candles,
      registry,
      log: silentLogger,
      notifyMode: 'telegram',
      botToken: FAKE_BOT_TOKEN,
      telegramApiRoot: tg.apiRoot,
      syncIntervalMs: 200,
    });
    try {
      const alice = await ensureUser(db.sql, uniq('u'), 'alice');
      await confirmChat(db.sql, alice.id, 4242);
      const bob = await ensureUser(db.sql, uniq('u'), 'bob'); // no chat binding
      const sa = await createStrategy(db.sql, alice.id, 'ma fast', PAYLOAD);
      const sb = await createStrategy(db.sql, bob.id, 'ma fast', PAYLOAD);
      await sendStrategyCommand(redis, 'strategy.run', { strategy_id: sa.id, run_id: `run-${uniq()}` });
      await sendStrategyCommand(redis, 'strategy.run', { strategy_id: sb.id, run_id: `run-${uniq()}` });
      const runA = (await waitRun(sa.id)) as string;
      const runB = (await waitRun(sb.id)) as string;
      await waitFor(async () => (await metricCount(alice.id, runA)) >= 80, 60_000, '80 minutes processed');
      await sendStrategyCommand(redis, 'strategy.stop', { strategy_id: sa.id });
      await waitFor(
        async () => (await outputs(streams.strategyEvents(alice.id), runA)).some((e) => e.type === 'stopped'),
        10_000,
        'stopped',
      );
      expect((await getRun(db.sql, runA))?.status).toBe('stopped');
      const { signals } = await checkRun(alice.id, runA, await lastMetricTs(alice.id, runA));
      expect(signals).toBeGreaterThan(0);
      const events = await outputs(streams.strategyEvents(alice.id), runA);
      expect(events[events.length - 1]?.type).toBe('stopped');

      // notices: alice (confirmed chat 4242) got them; bob's were skipped and counted
      await waitFor(() => tg.messages.length >= signals, 10_000, 'telegram notices');
      expect(tg.messages.every((m) => String(m.chatId) === '4242')).toBe(true);
      expect(tg.messages.some((m) => m.text.includes(sa.id) && /SIGNAL/i.test(m.text))).toBe(true);
      await waitFor(
        async () => (await metricSum(registry, 'strategy_telegram_notify_skipped_total')) > 0,
        10_000,
        'skips counted',
      );
      expect(await metricSum(registry, 'strategy_telegram_notify_total')).toBeGreaterThan(0);
      expect(await metricSum(registry, 'strategy_live_runner_iterations_total')).toBeGreaterThan(80);
      expect(await metricSum(registry, 'strategy_realtime_output_publish_total')).toBeGreaterThan(80);
      expect(await metricCount(bob.id, runB)).toBeGreaterThan(0); // the same candles drive every run
    } finally {
      await rt.close();
      await tg.close();
    }
  });

  it('two runner processes; the owner SIGKILLed mid-run; the survivor takes over; every event exactly once, in order', async () => {
    const env = { ...redisEnv(server), DATABASE_URL: dbUrl, LEASE_TTL_MS: '2000' };
    const procs = new Map<string, ChildProcess>();
    for (const name of ['runner-a', 'runner-b'])
      procs.set(name, await startWorker({ ...env, INSTANCE: name }));
    const user = await ensureUser(db.sql, uniq('u'), 'carol');
    const s = await createStrategy(db.sql, user.id, 'ma failover', PAYLOAD);
    await sendStrategyCommand(redis, 'strategy.run', { strategy_id: s.id, run_id: `run-${uniq()}` });
    const runId = (await waitRun(s.id)) as string;
    await waitFor(async () => (await metricCount(user.id, runId)) >= 30, 60_000, 'first owner progress');
    const owner = await leaseOwner(redis, streams.candles('1m', KEY));
    expect(owner === 'runner-a' || owner === 'runner-b').toBe(true);
    const victim = procs.get(owner ?? '') as ChildProcess;
    victim.kill('SIGKILL');
    await once(victim, 'exit');
    const atKill = await metricCount(user.id, runId);
    const survivor = owner === 'runner-a' ? 'runner-b' : 'runner-a';
    await waitFor(
      async () => (await leaseOwner(redis, streams.candles('1m', KEY))) === survivor,
      15_000,
      'survivor takes the lease',
    );
    await waitFor(
      async () => (await metricCount(user.id, runId)) >= atKill + 60,
      60_000,
      'survivor progress',
    );
    await checkRun(user.id, runId, await lastMetricTs(user.id, runId));
  });
});

async function waitRun(strategyId: string): Promise<string | undefined> {
  let id: string | undefined;
  await waitFor(
    async () => {
      const { rows } = await db.sql.query(
        `SELECT id FROM strategy_runs WHERE strategy_id = $1 AND status = 'running'`,
        [strategyId],
      );
      id = rows[0] ? String(rows[0]['id']) : undefined;
      return id !== undefined;
    },
    10_000,
    'run started',
  );
  return id;
}

async function startWorker(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/runner-worker.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('ready'), 30_000, 'runner process ready');
  return child;
}
