/**
 * Backtests end to end on a real Redis and PostgreSQL: 30 days of 1m candles (43,200, from the
 * simulated source, in the real candle store) backtested through the `backtesting` service and the
 * BullMQ queue with progress, and the same candles driven through the live runner (startRunner, its
 * run started at the backtest's `from`): the signals agree candle by candle. Cancellation of running and
 * queued backtests, retries per attempts, the concurrency limit.
 */
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { keys, streams } from '../../src/contracts/catalog.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { ensureUser } from '../../src/api/auth/identity-store.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { createStrategy, startRun, type StrategyRecord } from '../../src/strategy/store.js';
import { CommandFailedError } from '../../src/commands/errors.js';
import type { CandleStore } from '../../src/history/store.js';
import type { BacktestResult } from '../../src/backtest/result.js';
import { startBacktester, type Backtester } from '../../src/app/backtester.js';
import { getBacktest } from '../../src/backtest/backtests.js';
import { CommandClient } from '../../src/commands/client.js';
import { silentLogger } from '../../src/util/log.js';
import { createSimulatedSource } from '../../src/marketdata/sources/simulated.js';
import type { Candle } from '../../src/contracts/candle.js';
import { startRunner } from '../../src/app/runner.js';
import { RUNNER_GROUP } from '../../src/contracts/catalog.js';
import { outputCodec } from '../../src/strategy/outputs.js';
import { startPostgres } from '../helpers/postgres.js';
import { connect, startRedis, uniq, waitFor, type TestRedis } from '../helpers/redis.js';

const M = 60_000;
const N = 30 * 1440; // 30 days of 1m candles
const WARM = 300; // stored candles before the range
const T0 = Date.UTC(2026, 0, 5);
const KEY = `sim:spot:BT${uniq('').toUpperCase()}`;
const iso = (ms: number): string => new Date(ms).toISOString();

let server: TestRedis;
let redis: RedisClient;
let db: RelationalDb;
let userId: string;
let ema: StrategyRecord;
let rsi: StrategyRecord;
let client: CommandClient;
const running: Backtester[] = [];

const spec = (template: string, indicator: { name: string; params: Record<string, number> }): unknown => ({
  instrument_id: { market_id: 1, symbol: KEY.split(':')[2] },
  instrument_key: KEY,
  market_type: 'spot',
  timeframe: '1m',
  indicators: [indicator],
  signal_template: template,
});

async function simCandles(startMs: number, count: number): Promise<Candle[]> {
  const src = createSimulatedSource({
    instruments: [KEY],
    startMs,
    speed: 1e7,
    tickIntervalMs: 10_000,
    maxTicksPerSecond: 0,
    seed: 7,
  });
  const ac = new AbortController();
  const out: Candle[] = [];
  for await (const ev of src.events(ac.signal)) {
    if (ev.kind !== 'candle') continue;
    out.push(ev.candle);
    if (out.length >= count) break;
  }
  ac.abort();
  return out;
}

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
  db = openRelationalDb({ databaseUrl: (await startPostgres()).url }, silentLogger);
  await db.migrate();
  const candles = await simCandles(T0 - WARM * M, WARM + N);
  expect(candles[0]?.tsOpen).toBe(T0 - WARM * M);
  expect(candles[candles.length - 1]?.tsOpen).toBe(T0 + (N - 1) * M);
  for (let i = 0; i < candles.length; i += 5000) await db.candles.insert(candles.slice(i, i + 5000));
  userId = (await ensureUser(db.sql, uniq('u'), 'tester')).id;
  ema = await createStrategy(
    db.sql,
    userId,
    'ema',
    spec('EMA(12,26)', { name: 'EMA', params: { fast: 12, slow: 26 } }),
  );
  rsi = await createStrategy(
    db.sql,
    userId,
    'rsi',
    spec('RSI(14,30,70)', { name: 'RSI', params: { period: 14 } }),
  );
  client = new CommandClient(redis, { source: 'test' });
}, 180_000);

// One backtester at a time: all serve the one `backtesting` service (group backtesting.workers).
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((b) => b.close()));
});

afterAll(async () => {
  await client.close();
  await db.close();
});

async function backtester(
  o: Partial<Parameters<typeof startBacktester>[0]> & { candles?: CandleStore } = {},
): Promise<Backtester> {
  const bt = await startBacktester({
    redis: { url: server.url },
    db: db.sql,
    candles: db.candles,
    log: silentLogger,
    queueName: uniq('bt'),
    instanceId: uniq('i'),
    heartbeatMs: 500,
    ...o,
  });
  running.push(bt);
  return bt;
}

/** The store with `before` run ahead of every range read (delays, failures). */
function wrapStore(base: CandleStore, before: () => Promise<void>): CandleStore {
  return {
    kind: base.kind,
    migrate: () => base.migrate(),
    insert: (c) => base.insert(c),
    range: async (k, f, t, l) => {
      await before();
      return base.range(k, f, t, l);
    },
    last: (k, n, b) => base.last(k, n, b),
    openTimes: (k, f, t) => base.openTimes(k, f, t),
    bounds: (k) => base.bounds(k),
    instruments: () => base.instruments(),
    close: () => Promise.resolve(),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function finished(
  id: string,
  timeoutMs = 60_000,
): Promise<NonNullable<Awaited<ReturnType<typeof getBacktest>>>> {
  await waitFor(
    async () =>
      ['done', 'failed', 'cancelled'].includes(
        (await getBacktest(db.sql, id, { includeResult: false }))?.status ?? '',
      ),
    timeoutMs,
    `backtest ${id} finished`,
  );
  const b = await getBacktest(db.sql, id);
  if (!b) throw new Error('gone');
  return b;
}

async function resultEvents(): Promise<
  { type: string; correlationId: string; payload: Record<string, unknown> }[]
> {
  return (await redis.xRange(streams.serviceResults('backtesting'), '-', '+'))
    .filter(
      (e) => e.message['type']?.startsWith('backtest.') && !e.message['type'].startsWith('backtest.run'),
    )
    .map((e) => outputCodec.decode(e.message))
    .filter((e) => ['backtest.completed', 'backtest.failed', 'backtest.cancelled'].includes(e.type))
    .map((e) => ({ type: e.type, correlationId: e.correlationId, payload: e.payload }));
}

/** Signal events of a live run: candle open time and side. */
async function liveSignals(runId: string): Promise<{ ts: number; signal: string }[]> {
  return (await redis.xRange(streams.strategyEvents(userId), '-', '+'))
    .map((e) => outputCodec.decode(e.message))
    .filter((e) => e.type === 'signal' && e.payload['run_id'] === runId)
    .map((e) => {
      const candle = e.payload['candle'] as { ts_open: string };
      const signal = e.payload['signal'];
      return { ts: Date.parse(candle.ts_open), signal: typeof signal === 'string' ? signal : '' };
    });
}

async function lastLiveEquity(runId: string): Promise<number | undefined> {
  const entries = await redis.xRevRange(streams.strategyMetrics(userId), '+', '-', { COUNT: 10 });
  const m = entries.map((e) => outputCodec.decode(e.message)).find((e) => e.payload['run_id'] === runId);
  return m ? Number(m.payload['equity']) : undefined;
}

describe('backtests', () => {
  it('30 days of 1m candles through the service and the job queue with progress; the signals equal the live runner over the same candles', async () => {
    const bt = await backtester({ concurrency: 2, pageSize: 2000, progressEvery: 2000 });
    const progress = new Map<string, number[]>();
    bt.worker?.worker.on('progress', (job, p) => {
      const list = progress.get(job.id ?? '') ?? [];
      list.push((p as { fraction: number }).fraction);
      progress.set(job.id ?? '', list);
    });
    const t0 = Date.now();
    const ids: Record<string, string> = {};
    for (const s of [ema, rsi]) {
      const r = await client.request(
        'backtesting',
        'backtest.run',
        { strategy_id: s.id, from: iso(T0), to: iso(T0 + N * M), user_id: userId },
        { correlationId: `corr-${s.name}` },
      );
      expect(r.status).toBe('queued');
      ids[s.name] = r.backtest_id;
    }
    const results: Record<string, BacktestResult> = {};
    for (const s of [ema, rsi]) {
      const id = ids[s.name] ?? '';
      const b = await finished(id);
      expect(b.status).toBe('done');
      expect(b.progress).toBe(1);
      expect(b.attempts).toBe(1);
      const view = (await client.request('backtesting', 'backtest.get', { backtest_id: id })).backtest;
      expect(view).toMatchObject({ id, status: 'done', strategy_id: s.id, user_id: userId, from: iso(T0) });
      const r = view.result as unknown as BacktestResult;
      results[s.name] = r;
      expect(r.complete).toBe(true);
      expect(r.candles.processed).toBe(N);
      expect(r.candles.first).toBe(iso(T0));
      expect(r.candles.last).toBe(iso(T0 + (N - 1) * M));
      expect(r.equity_curve.length).toBeGreaterThan(1000);
      expect(r.equity_curve.length).toBeLessThanOrEqual(2000);
      expect(r.equity_curve[r.equity_curve.length - 1]?.ts).toBe(T0 + (N - 1) * M);
      expect(r.summary.signals).toBe(r.signals.length);
      expect(r.summary.signals).toBeGreaterThan(10);
      expect(r.summary.trades).toBe(r.trades.length);
      expect(r.summary.max_drawdown).toBeGreaterThanOrEqual(0);
      expect(r.summary.win_rate).toBe(r.trades.filter((t) => t.pnl > 0).length / r.trades.length);
      expect(r.summary.pnl).toBeCloseTo(r.summary.final_equity - r.summary.initial_equity, 6);
      // progress: reported every 2000 candles, rising, ending at 1
      const p = progress.get(id) ?? [];
      expect(p.length).toBeGreaterThanOrEqual(21);
      expect(p.every((x, i) => i === 0 || x > (p[i - 1] ?? 0))).toBe(true);
      expect(p[p.length - 1]).toBe(1);
    }
    const elapsed = Date.now() - t0;
    expect(results['ema']?.candles.warmup).toBe(26);
    expect(results['rsi']?.candles.warmup).toBe(15);
    // announced on backtesting:mgmt:results with the run command's correlation id
    const events = await resultEvents();
    for (const s of [ema, rsi]) {
      const e = events.find((x) => x.payload['backtest_id'] === ids[s.name]);
      expect(e).toMatchObject({ type: 'backtest.completed', correlationId: `corr-${s.name}` });
      expect((e?.payload['summary'] as { signals: number }).signals).toBe(results[s.name]?.summary.signals);
    }

    // The same candles through the live runner: runs that started at T0, the runner's subscription
    // resuming at T0 (checkpoint), everything before T0 its warm-up replay from the store.
    const runs: Record<string, string> = {};
    for (const s of [ema, rsi]) {
      const run = await startRun(db.sql, s, KEY, `run-${s.name}-${uniq()}`);
      await db.sql.query('UPDATE strategy_runs SET started_at = $2 WHERE id = $1', [run.id, new Date(T0)]);
      runs[s.name] = run.id;
    }
    const cp = keys.subscriptionCheckpoint(RUNNER_GROUP, streams.candles('1m', KEY));
    await redis.set(cp, String(T0 - M));
    const rt = await startRunner({
      redis: { url: server.url },
      db: db.sql,
      candles: db.candles,
      registry: new Registry(),
      log: silentLogger,
      notifyMode: 'log_only',
      syncIntervalMs: 200,
    });
    try {
      await waitFor(
        async () => (await redis.get(cp)) === String(T0 + (N - 1) * M),
        240_000,
        'live runner done',
      );
    } finally {
      await rt.close();
    }
    for (const s of [ema, rsi]) {
      const live = await liveSignals(runs[s.name] ?? '');
      const r = results[s.name] as BacktestResult;
      expect(live.length).toBe(r.signals.length);
      expect(r.signals.map((x) => ({ ts: x.ts, signal: x.signal }))).toEqual(live);
      expect(await lastLiveEquity(runs[s.name] ?? '')).toBe(r.summary.final_equity);
    }
    console.log(`two 30-day backtests through the queue: ${elapsed} ms`);
  }, 300_000);

  it('invalid requests get typed answers: unknown strategy, another user, an empty range', async () => {
    await backtester();
    const run = (p: { strategy_id: string; from: string; to: string; user_id?: string }): Promise<unknown> =>
      client.request('backtesting', 'backtest.run', p).catch((e: unknown) => e);
    const range = { from: iso(T0), to: iso(T0 + M) };
    expect(await run({ strategy_id: 'nope', ...range })).toMatchObject({ remoteCode: 'NOT_FOUND' });
    expect(await run({ strategy_id: ema.id, ...range, user_id: 'someone-else' })).toMatchObject({
      remoteCode: 'NOT_FOUND',
    });
    const empty = await run({ strategy_id: ema.id, from: iso(T0), to: iso(T0) });
    expect(empty).toBeInstanceOf(CommandFailedError);
    expect((empty as CommandFailedError).remoteCode).toBe('INVALID_RANGE');
    const get = await client
      .request('backtesting', 'backtest.get', { backtest_id: 'nope' })
      .catch((e: unknown) => e);
    expect(get).toMatchObject({ remoteCode: 'NOT_FOUND' });
  });

  it('cancellation stops a running backtest at its next page and drops a queued one; concurrency 1 keeps the second waiting', async () => {
    const slow = wrapStore(db.candles, () => sleep(25));
    const bt = await backtester({ candles: slow, concurrency: 1, pageSize: 1000, progressEvery: 1000 });
    const range = { from: iso(T0), to: iso(T0 + N * M) };
    const first = await client.request(
      'backtesting',
      'backtest.run',
      { strategy_id: ema.id, ...range },
      { correlationId: 'c-first' },
    );
    const second = await client.request(
      'backtesting',
      'backtest.run',
      { strategy_id: rsi.id, ...range },
      { correlationId: 'c-second' },
    );
    await waitFor(
      async () =>
        ((await getBacktest(db.sql, first.backtest_id, { includeResult: false }))?.progress ?? 0) > 0.05,
      20_000,
      'first backtest under way',
    );
    expect((await getBacktest(db.sql, second.backtest_id))?.status).toBe('queued');

    const c2 = await client.request('backtesting', 'backtest.cancel', { backtest_id: second.backtest_id });
    expect(c2).toEqual({ backtest_id: second.backtest_id, status: 'cancelled', cancel_requested: true });
    expect(await bt.queue.queue.getJob(second.backtest_id)).toBeUndefined();

    const c1 = await client.request('backtesting', 'backtest.cancel', { backtest_id: first.backtest_id });
    expect(c1).toEqual({ backtest_id: first.backtest_id, status: 'running', cancel_requested: true });
    const b1 = await finished(first.backtest_id);
    expect(b1.status).toBe('cancelled');
    expect(b1.progress).toBeLessThan(1);
    const r1 = b1.result as unknown as BacktestResult;
    expect(r1.complete).toBe(false);
    expect(r1.candles.processed).toBeLessThan(N);
    expect(r1.candles.processed).toBeGreaterThan(0);
    const b2 = await getBacktest(db.sql, second.backtest_id);
    expect(b2).toMatchObject({ status: 'cancelled', startedAt: null, result: null });
    await waitFor(
      async () =>
        (await resultEvents()).filter(
          (e) => e.type === 'backtest.cancelled' && e.correlationId.startsWith('c-'),
        ).length === 2,
      10_000,
      'cancellations announced',
    );
    // cancelling a finished backtest changes nothing
    expect(
      await client.request('backtesting', 'backtest.cancel', { backtest_id: first.backtest_id }),
    ).toMatchObject({
      status: 'cancelled',
    });
  });

  it('a failing job is retried per its attempts: one failure then success; failures on every attempt end failed', async () => {
    let calls = 0;
    const flaky = wrapStore(db.candles, () => {
      calls++;
      return calls === 1 ? Promise.reject(new Error('store hiccup')) : Promise.resolve();
    });
    const bt = await backtester({ candles: flaky, attempts: 3, backoffMs: 100 });
    const range = { from: iso(T0), to: iso(T0 + 1440 * M) };
    const ok = await client.request('backtesting', 'backtest.run', { strategy_id: ema.id, ...range });
    const b = await finished(ok.backtest_id);
    expect(b).toMatchObject({ status: 'done', attempts: 2, error: null });
    // the row is finished inside the job; BullMQ records the job's end just after
    await waitFor(
      async () => (await bt.queue.queue.getJobState(ok.backtest_id)) === 'completed',
      5000,
      'job completed',
    );
    expect((await bt.queue.queue.getJob(ok.backtest_id))?.attemptsMade).toBe(2);

    await bt.close(); // the next backtester alone serves backtesting
    const down = wrapStore(db.candles, () => Promise.reject(new Error('store down')));
    const bt2 = await backtester({ candles: down, attempts: 2, backoffMs: 100 });
    const bad = await client.request(
      'backtesting',
      'backtest.run',
      { strategy_id: rsi.id, ...range },
      { correlationId: 'c-bad' },
    );
    const f = await finished(bad.backtest_id);
    expect(f).toMatchObject({ status: 'failed', attempts: 2, error: 'store down', result: null });
    await waitFor(
      async () => (await bt2.queue.queue.getJobState(bad.backtest_id)) === 'failed',
      5000,
      'job failed',
    );
    expect((await bt2.queue.queue.getJob(bad.backtest_id))?.attemptsMade).toBe(2);
    await waitFor(
      async () =>
        (await resultEvents()).some((e) => e.type === 'backtest.failed' && e.correlationId === 'c-bad'),
      10_000,
      'failure announced',
    );
  });

  it('the concurrency limit holds: four backtests on a worker of concurrency 2 never run more than two at once', async () => {
    const slow = wrapStore(db.candles, () => sleep(40));
    const bt = await backtester({ candles: slow, concurrency: 2, pageSize: 1000 });
    let active = 0;
    let peak = 0;
    bt.worker?.worker.on('active', () => (peak = Math.max(peak, ++active)));
    bt.worker?.worker.on('completed', () => active--);
    const range = { from: iso(T0), to: iso(T0 + 5 * 1440 * M) };
    const ids: string[] = [];
    for (const s of [ema, rsi, ema, rsi]) {
      ids.push(
        (await client.request('backtesting', 'backtest.run', { strategy_id: s.id, ...range })).backtest_id,
      );
    }
    for (const id of ids) expect((await finished(id)).status).toBe('done');
    expect(peak).toBe(2);
    const status = await client.request('backtesting', 'backtest.get', {
      backtest_id: ids[0] ?? '',
      include_result: false,
    });
    expect(status.backtest.result).toBeNull();
  });
});
