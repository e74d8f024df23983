/**
 * Strategies over HTTP (smoke scenario steps 3-5, docs/runbook.md) against a real runner: create, list,
 * get, run, stop, the run's events; field-naming validation errors; one user never sees or touches
 * another's strategy.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiService } from '../../src/app/start-api.js';
import { streams } from '../../src/contracts/catalog.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { getRun } from '../../src/strategy/store.js';
import { silentLogger } from '../../src/util/log.js';
import { startRunner, type RunnerRuntime } from '../../src/app/runner.js';
import { outputCodec } from '../../src/strategy/outputs.js';
import { BOT_TOKEN, HttpClient, startApi, testSettings } from '../helpers/api.js';
import { startPostgres } from '../helpers/postgres.js';
import { connect, startRedis, waitFor, type TestRedis, redisOptions } from '../helpers/redis.js';
import { SMOKE_STRATEGY } from '../helpers/fixtures.js';

let server: TestRedis;
let redis: RedisClient;
let db: RelationalDb;
let api: ApiService;
let runner: RunnerRuntime;

const PAYLOAD = SMOKE_STRATEGY;

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
  db = openRelationalDb({ databaseUrl: (await startPostgres()).url }, silentLogger);
  await db.migrate();
  runner = await startRunner({
    redis: redisOptions(server),
    db: db.sql,
    candles: db.candles,
    registry: new Registry(),
    log: silentLogger,
    notifyMode: 'log_only',
    syncIntervalMs: 200,
  });
  api = await startApi({
    redis: redisOptions(server),
    db: db.sql,
    settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    commandWaitMs: 5000,
  });
});

afterAll(async () => {
  await api.close();
  await runner.close();
  await db.close();
});

interface StrategyBody {
  strategy_id: string;
  user_id: string;
  name: string;
  status: string;
  run: { run_id: string; status: string } | null;
  spec: Record<string, unknown>;
}

describe('strategies API', () => {
  it('create, list, get, run, events, stop — the smoke flow of docs/runbook.md', async () => {
    const alice = new HttpClient(api.url);
    const me = await alice.login(BOT_TOKEN, { id: '810001', username: 'alice' });
    const created = await alice.post<StrategyBody>('/strategies', PAYLOAD);
    expect(created.status, created.text).toBe(201);
    const id = created.body.strategy_id;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.body).toMatchObject({
      user_id: me.user_id,
      name: 'MA(20,50) binance:spot:BTCUSDT 1m',
      status: 'created',
      run: null,
      spec: { instrument_key: 'binance:spot:BTCUSDT', signal_template: 'MA(20,50)', timeframe: '1m' },
    });

    const list = await alice.get<{ strategies: StrategyBody[] }>('/strategies');
    expect(list.body.strategies.map((s) => s.strategy_id)).toEqual([id]);
    expect((await alice.get<StrategyBody>(`/strategies/${id}`)).body.strategy_id).toBe(id);

    const run = await alice.post<{ run_id: string; status: string; strategy_id: string }>(
      `/strategies/${id}/run`,
    );
    expect(run.status, run.text).toBe(202);
    expect(run.body).toMatchObject({ strategy_id: id, status: 'running' });
    expect((await getRun(db.sql, run.body.run_id))?.status).toBe('running');
    const got = await alice.get<StrategyBody>(`/strategies/${id}`);
    expect(got.body).toMatchObject({
      status: 'running',
      run: { run_id: run.body.run_id, status: 'running' },
    });

    // the started event is in the user's stream and in the strategy's events
    const entries = await redis.xRange(streams.strategyEvents(me.user_id), '-', '+');
    expect(entries.map((e) => outputCodec.decode(e.message).type)).toContain('started');
    const events = await alice.get<{ events: { type: string; run_id: string; id: string }[] }>(
      `/strategies/${id}/events`,
    );
    expect(events.status).toBe(200);
    expect(events.body.events[0]).toMatchObject({ type: 'started', run_id: run.body.run_id });

    const stop = await alice.post<{ status: string; run_id: string }>(`/strategies/${id}/stop`);
    expect(stop.status).toBe(202);
    expect(stop.body).toMatchObject({ status: 'stopped', run_id: run.body.run_id });
    await waitFor(
      async () => (await getRun(db.sql, run.body.run_id))?.status === 'stopped',
      5000,
      'run stopped',
    );
    const after = await alice.get<{ events: { type: string }[] }>(`/strategies/${id}/events?limit=10`);
    expect(after.body.events.map((e) => e.type)).toEqual(['stopped', 'started']); // newest first
    const one = await alice.get<{ events: { type: string; id: string }[]; next_before: string | null }>(
      `/strategies/${id}/events?limit=1`,
    );
    expect(one.body.events.map((e) => e.type)).toEqual(['stopped']);
    const older = await alice.get<{ events: { type: string }[] }>(
      `/strategies/${id}/events?limit=1&before=${one.body.next_before ?? ''}`,
    );
    expect(older.body.events.map((e) => e.type)).toEqual(['started']);
    expect((await alice.get(`/strategies/${id}/events?limit=0`)).status).toBe(400);
    expect((await alice.get(`/strategies/${id}/metrics`)).status).toBe(200);
  });

  it('an invalid payload is 400 naming the field', async () => {
    const c = new HttpClient(api.url);
    await c.login(BOT_TOKEN, { id: '810002' });
    const cases: [unknown, string][] = [
      [{ ...PAYLOAD, indicators: [{ name: 'MA', params: { fast: 50, slow: 20 } }] }, 'indicators.0.params.'],
      [
        { ...PAYLOAD, indicators: [{ name: 'MA', params: { fast: 21, slow: 50 } }] },
        'indicators.0.params.fast',
      ],
      [{ ...PAYLOAD, instrument_key: 'binance:spot:BTC USDT' }, 'instrument_key'],
      [{ ...PAYLOAD, signal_template: 'MA(20,' }, 'signal_template'],
      [{ ...PAYLOAD, timeframe: '3m' }, 'timeframe'],
      [{ ...PAYLOAD, owner: 'someone' }, 'owner'],
      [{ ...PAYLOAD, instrument_id: { market_id: 1, symbol: 'ETHUSDT' } }, 'instrument_id.symbol'],
      [[], '(root)'],
    ];
    for (const [body, field] of cases) {
      const r = await c.post<{ error: string; field: string; code: string }>('/strategies', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('strategy_invalid');
      expect(r.body.field.startsWith(field), `${r.body.field} for ${JSON.stringify(body)}`).toBe(true);
      expect(typeof r.body.error).toBe('string');
    }
    expect((await c.get<{ strategies: unknown[] }>('/strategies')).body.strategies).toEqual([]);
  });

  it("another user's strategy is 404 everywhere, like one that does not exist", async () => {
    const alice = new HttpClient(api.url);
    await alice.login(BOT_TOKEN, { id: '820001', username: 'alice2' });
    const bob = new HttpClient(api.url);
    await bob.login(BOT_TOKEN, { id: '820002', username: 'bob' });
    const s = await alice.post<StrategyBody>('/strategies', PAYLOAD);
    const id = s.body.strategy_id;
    for (const [method, path] of [
      ['GET', `/strategies/${id}`],
      ['POST', `/strategies/${id}/run`],
      ['POST', `/strategies/${id}/stop`],
      ['GET', `/strategies/${id}/events`],
      ['GET', `/strategies/${id}/metrics`],
    ] as const) {
      const theirs = await bob.request(method, path);
      const missing = await bob.request(method, path.replace(id, '00000000-0000-0000-0000-000000000000'));
      expect(theirs.status, `${method} ${path}`).toBe(404);
      expect(theirs.body).toEqual(missing.body);
    }
    expect((await bob.get<{ strategies: unknown[] }>('/strategies')).body.strategies).toEqual([]);
    expect((await bob.get('/strategies/..%2F..%2Fetc')).status).toBe(404);
    // nothing was started for bob's requests
    expect((await alice.get<StrategyBody>(`/strategies/${id}`)).body.status).toBe('created');
    // and without a session, nothing at all
    const anon = new HttpClient(api.url);
    expect((await anon.get('/strategies')).status).toBe(401);
    expect((await anon.post('/strategies', PAYLOAD)).status).toBe(401);
    expect((await anon.post(`/strategies/${id}/run`)).status).toBe(401);
  });
});
