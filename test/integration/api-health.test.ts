/**
 * Health, readiness and metrics of the API, and the static files: /readyz is 503 when Redis is down or
 * the database cannot answer (what failed named to an admin only), and 200 again once Redis is back.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { silentLogger } from '../../src/util/log.js';
import { BOT_TOKEN, HttpClient, startApi, testSettings } from '../helpers/api.js';
import { startPostgres } from '../helpers/postgres.js';
import { startRedis, waitFor, type TestRedis, redisOptions } from '../helpers/redis.js';

let server: TestRedis;
let db: RelationalDb;
let dbUrl: string;

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  dbUrl = (await startPostgres()).url;
  db = openRelationalDb({ databaseUrl: dbUrl }, silentLogger);
  await db.migrate();
});

afterAll(async () => {
  await db.close();
});

describe('health and metrics', () => {
  it('/healthz, /readyz, /metrics with the shared registry, /api/v1/live/metrics', async () => {
    const registry = new Registry();
    const shared = new Counter({
      name: 'feed_example_total',
      help: 'a metric of another service',
      registers: [registry],
    });
    shared.inc(3);
    const api = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      registry,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN, MARKETBUS_ADMIN_TELEGRAM_IDS: '411001' }),
    });
    const c = new HttpClient(api.url);
    expect((await c.get('/healthz')).body).toEqual({ status: 'ok' });
    await waitFor(async () => (await c.get('/readyz')).status === 200, 5000, 'ready');
    expect((await c.get('/readyz')).body).toEqual({ status: 'ok' });
    await c.login(BOT_TOKEN); // Telegram id 411001, the admin
    expect((await c.get('/readyz')).body).toEqual({ status: 'ok', redis: 'ok', db: 'ok' });
    // a metric registered after the server started still shows (merged at scrape time)
    new Counter({ name: 'runner_late_total', help: 'registered later', registers: [registry] }).inc();
    const m = await c.get('/metrics');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/text\/plain/);
    expect(m.text).toContain('feed_example_total 3');
    expect(m.text).toContain('runner_late_total 1');
    expect(m.text).toMatch(/api_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1/);
    expect(m.text).toContain('# TYPE live_ws_clients gauge');
    const live = await c.get('/api/v1/live/metrics');
    expect(live.text).toContain('# TYPE live_relay_xread_total counter');
    expect(live.text).not.toContain('feed_example_total');
    await api.close();
  });

  it('/readyz is 503 when Redis is down, and 200 again when it is back', async () => {
    const own = await startRedis({ persistence: 'none' });
    const api = await startApi({
      redis: { url: own.url, reconnectBaseMs: 50, reconnectMaxMs: 200 },
      db: db.sql,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    });
    const c = new HttpClient(api.url);
    await waitFor(async () => (await c.get('/readyz')).status === 200, 5000, 'ready');
    await own.kill('SIGKILL');
    const down = await c.get('/readyz');
    expect(down.status).toBe(503);
    expect(down.body).toEqual({ status: 'unavailable' });
    // the API itself keeps answering; what needs Redis says 503 instead of hanging
    expect((await c.get('/healthz')).status).toBe(200);
    const login = await c.post('/auth/telegram/login', {});
    expect(login.status).toBe(400); // validation needs no Redis
    await own.restart();
    await waitFor(async () => (await c.get('/readyz')).status === 200, 10_000, 'ready again');
    await api.close();
  });

  it('/readyz is 503 when the database cannot answer', async () => {
    const gone = openRelationalDb({ databaseUrl: dbUrl }, silentLogger);
    await gone.close();
    const api = await startApi({
      redis: redisOptions(server),
      db: gone.sql,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    });
    const r = await new HttpClient(api.url).get('/readyz');
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ status: 'unavailable' });
    await api.close();
  });

  it('serves the dashboard files from the public folder next to the API routes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'marketbus-public-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>marketbus</title>');
    writeFileSync(join(dir, 'app.js'), 'console.log(1)');
    const api = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      publicDir: dir,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    });
    const c = new HttpClient(api.url);
    const index = await c.get('/');
    expect(index.status).toBe(200);
    expect(index.text).toContain('<title>marketbus</title>');
    expect((await c.get('/app.js')).headers.get('content-type')).toMatch(/javascript/);
    expect((await c.get('/healthz')).body).toEqual({ status: 'ok' });
    expect((await c.get('/auth/current-user')).status).toBe(401);
    expect((await c.get('/missing.js')).status).toBe(404);
    expect((await c.get('/../../etc/passwd')).status).toBe(404);
    await api.close();
  });
});
