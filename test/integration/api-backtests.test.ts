/**
 * Backtests over HTTP (issue 7): POST /strategies/:id/backtests queues one over stored candles, the
 * backtester runs it on the job queue, GET /backtests/:id shows progress and then the result (trades,
 * equity curve, PnL, drawdown, win rate); another user's backtest is a 404; bad ranges are 400. Also
 * the dashboard's bus-wide health route.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sineCandles } from '../helpers/fixtures.js';
import type { ApiService } from '../../src/app/start-api.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { startBacktester, type Backtester } from '../../src/app/backtester.js';
import { silentLogger } from '../../src/util/log.js';
import { BOT_TOKEN, HttpClient, startApi, testSettings } from '../helpers/api.js';
import { connect, startRedis, waitFor } from '../helpers/redis.js';

const M = 60_000;
const KEY = 'binance:spot:BTCUSDT';
const T0 = Date.UTC(2026, 0, 5, 0, 0);
let db: RelationalDb;
let api: ApiService;
let bt: Backtester;

beforeAll(async () => {
  const server = await startRedis({ persistence: 'none' });
  await connect(server);
  db = openRelationalDb({}, silentLogger); // PGlite in memory
  await db.migrate();
  const candles = sineCandles(KEY, 3 * 1440, T0, 40, 7);
  await db.candles.insert(candles);
  bt = await startBacktester({
    redis: { url: server.url },
    db: db.sql,
    candles: db.candles,
    log: silentLogger,
  });
  api = await startApi({
    redis: { url: server.url },
    db: db.sql,
    settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN, MARKETBUS_ADMIN_TELEGRAM_IDS: '830003' }),
  });
});

afterAll(async () => {
  await api.close();
  await bt.close();
  await db.close();
});

const PAYLOAD = {
  instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
  instrument_key: KEY,
  market_type: 'spot',
  timeframe: '1m',
  indicators: [{ name: 'EMA', params: { fast: 12, slow: 26 } }],
  signal_template: 'EMA(12,26)',
};

interface BacktestView {
  id: string;
  status: string;
  progress: number;
  result: {
    summary: Record<string, number>;
    trades: unknown[];
    equity_curve: { ts: number; equity: number }[];
  } | null;
}

describe('backtests API', () => {
  it('runs a backtest of a stored range through the queue and shows progress and the result', async () => {
    const alice = new HttpClient(api.url);
    await alice.login(BOT_TOKEN, { id: '830001', username: 'alice' });
    const s = await alice.post<{ strategy_id: string }>('/strategies', PAYLOAD);
    const created = await alice.post<BacktestView>(`/strategies/${s.body.strategy_id}/backtests`, {
      from: new Date(T0 + 60 * M).toISOString(),
      to: new Date(T0 + 3 * 1440 * M).toISOString(),
    });
    expect(created.status).toBe(202);
    expect(['queued', 'running']).toContain(created.body.status);
    let view = created.body;
    await waitFor(
      async () => {
        view = (await alice.get<BacktestView>(`/backtests/${created.body.id}`)).body;
        return view.status === 'done';
      },
      60_000,
      'backtest done',
    );
    expect(view.progress).toBe(1);
    expect(view.result?.trades.length).toBeGreaterThan(0);
    expect(view.result?.equity_curve.length).toBeGreaterThan(10);
    expect(Object.keys(view.result?.summary ?? {})).toEqual(
      expect.arrayContaining(['pnl', 'max_drawdown', 'win_rate']),
    );
    const list = await alice.get<{ backtests: { id: string }[] }>(
      `/strategies/${s.body.strategy_id}/backtests`,
    );
    expect(list.body.backtests.map((b) => b.id)).toContain(created.body.id);

    // another user sees nothing; bad ranges are refused
    const bob = new HttpClient(api.url);
    await bob.login(BOT_TOKEN, { id: '830002', username: 'bob' });
    expect((await bob.get(`/backtests/${created.body.id}`)).status).toBe(404);
    expect(
      (await bob.post(`/strategies/${s.body.strategy_id}/backtests`, { from: T0, to: T0 + M })).status,
    ).toBe(404);
    const backwards = await alice.post<{ code: string }>(`/strategies/${s.body.strategy_id}/backtests`, {
      from: T0 + M,
      to: T0,
    });
    expect(backwards.status).toBe(400);
    expect(backwards.body.code).toBe('invalid_range');
    expect(
      (await alice.post(`/strategies/${s.body.strategy_id}/backtests`, { from: 'soon', to: T0 })).status,
    ).toBe(400);
    expect((await alice.post(`/strategies/${s.body.strategy_id}/backtests`, { from: T0 })).status).toBe(400);
  });

  it('serves the bus-wide health report to signed-in users (the services streams to the admin)', async () => {
    const anon = new HttpClient(api.url);
    expect((await anon.get('/api/v1/streams')).status).toBe(401);
    const u = new HttpClient(api.url);
    await u.login(BOT_TOKEN, { id: '830003', username: 'carol' }); // the admin
    const r = await u.get<{ streams: { stream: string; flags: unknown[] }[] }>('/api/v1/streams');
    expect(r.status).toBe(200);
    expect(
      r.body.streams.some(
        (x) => x.stream === 'mgmt:backtesting:commands' || x.stream === 'backtesting:status',
      ),
    ).toBe(true);
  });
});
