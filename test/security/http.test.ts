/**
 * Security suite, topic `http` (docs/security.md, "Browser: the dashboard and its headers" and
 * "Requests: timeouts, sizes, errors, health, streams"). What it attacks:
 *
 * - the dashboard: markup in a feed status stream (instrument keys, states), in a group name and a
 *   stream name, rendered in headless Chromium: no script runs, the text shows as text; every answer
 *   carries the Content-Security-Policy and helmet's headers;
 * - `/api/v1/streams`: user A looks for user B's streams and consumer names (only an admin sees them);
 *   many calls do not each scan the bus;
 * - the request layer: a body trickled byte by byte and a head never finished (dropped at the request
 *   timeout), a head over the header limit (431), stream IDs beyond Redis's 64-bit range (400, never
 *   500), `/readyz` and runner refusals probed for internal error text.
 *
 * The first block attacks a real `marketbus up` through a TCP forwarder that rewrites nothing; the
 * second an in-process API with short limits over a test redis-server and PostgreSQL.
 */
import { connect as netConnect } from 'node:net';
import type { Browser } from 'playwright-core';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { startRunner, type RunnerRuntime } from '../../src/app/runner.js';
import type { ApiService } from '../../src/app/start-api.js';
import { connectRedis, closeRedis, type RedisClient } from '../../src/bus/connection.js';
import { isStreamId, STREAM_ID_PART_MAX } from '../../src/bus/stream-id.js';
import { sendCommand } from '../../src/bus/raw-command.js';
import { serverLimits } from '../../src/api/server-settings.js';
import { silentLogger } from '../../src/util/log.js';
import {
  BOT_TOKEN,
  HttpClient,
  LiveSocket,
  signedLoginPayload,
  startApi,
  testSettings,
} from '../helpers/api.js';
import { launchChromium, watchedPage } from '../helpers/chromium.js';
import { startForwarder, type Forwarder } from '../helpers/forwarder.js';
import { startPostgres } from '../helpers/postgres.js';
import { connect, redisOptions, startRedis, uniq, waitFor, type TestRedis } from '../helpers/redis.js';
import { spawnUp, untilUp, UP_INSTRUMENT } from '../helpers/up-process.js';

const ADMIN = '777001';
const ALICE = '511001';
const BOB = '522002';
const MAX = STREAM_ID_PART_MAX.toString(); // 18446744073709551615
const HOSTILE = (n: number): string => `<img src=x onerror=window.__pwned=${n}>`;

const strategyBody = (name: string) => ({
  name,
  instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
  instrument_key: UP_INSTRUMENT,
  market_type: 'spot',
  timeframe: '1m',
  indicators: [{ name: 'MA', params: { fast: 3, slow: 8 } }],
  signal_template: 'MA(3,8)',
});

async function signIn(base: string, telegramId: string, username: string): Promise<HttpClient> {
  const c = new HttpClient(base);
  await c.login(BOT_TOKEN, { id: telegramId, username });
  return c;
}

type StreamsBody = { streams: { stream: string; groups: { name: string; consumerList: unknown[] }[] }[] };

describe('a real marketbus up behind a TCP forwarder', () => {
  let fwd: Forwarder;
  let redis: RedisClient;
  let browser: Browser | undefined;

  beforeAll(async () => {
    const up = spawnUp(['--port', '0', '--speed', '600'], {
      env: { TELEGRAM_BOT_TOKEN: BOT_TOKEN, MARKETBUS_ADMIN_TELEGRAM_IDS: `${ADMIN},999` },
    });
    const { redisUrl, api } = await untilUp(up);
    fwd = await startForwarder(api);
    redis = await connectRedis({ url: redisUrl });
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    if (redis) await closeRedis(redis);
  });

  it('every answer carries the CSP (no inline script, never framed) and helmet headers', async () => {
    for (const path of ['/', '/app.js', '/strategies', '/no-such-page']) {
      const r = await fetch(`${fwd.url}${path}`);
      const csp = r.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).toContain("script-src-attr 'none'");
      expect(csp, path).toContain("object-src 'none'");
      // A bot is configured: the Login Widget's script and frame origins, and nothing else.
      expect(csp, path).toMatch(/script-src 'self' https:\/\/telegram\.org(;|$)/);
      expect(csp, path).toMatch(/frame-src https:\/\/oauth\.telegram\.org(;|$)/);
      expect(csp, path).not.toContain('unsafe-inline');
      expect(csp, path).not.toContain('unsafe-eval');
      expect(r.headers.get('x-frame-options'), path).toBe('DENY');
      expect(r.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(r.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(r.headers.get('cross-origin-opener-policy'), path).toBe('same-origin');
    }
  });

  it('/readyz tells anyone only the status; the admin also gets the details', async () => {
    const anyone = await new HttpClient(fwd.url).get('/readyz');
    expect(anyone.status).toBe(200);
    expect(anyone.body).toEqual({ status: 'ok' });
    const user = await (await signIn(fwd.url, ALICE, 'alice')).get('/readyz');
    expect(user.body).toEqual({ status: 'ok' });
    const admin = await (await signIn(fwd.url, ADMIN, 'admin')).get('/readyz');
    expect(admin.body).toEqual({ status: 'ok', redis: 'ok', db: 'ok' });
  });

  it('a 20-digit stream ID beyond Redis range is a coded 400, over HTTP and over the relay', async () => {
    const alice = await signIn(fwd.url, ALICE, 'alice');
    const created = await alice.post<{ strategy_id: string }>('/strategies', strategyBody('ids'));
    expect(created.status).toBe(201);
    const events = `/strategies/${created.body.strategy_id}/events`;
    for (const bad of ['99999999999999999999-0', `0-18446744073709551616`, `${MAX}1-0`, '1-2-3']) {
      const r = await alice.get(`${events}?before=${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body, bad).toMatchObject({ code: 'bad_query' });
    }
    expect((await alice.get(`${events}?before=${MAX}-${MAX}`)).status).toBe(200);

    const ws = await LiveSocket.open(fwd.url, alice.cookie);
    ws.send({ op: 'subscribe', channel: 'events', from: '99999999999999999999-0', id: 'far' });
    const refused = await ws.next((m) => m.op === 'error' && m.id === 'far');
    expect(refused.code).toBe('invalid_from');
    ws.send({ op: 'subscribe', channel: 'events', from: `${MAX}-${MAX}`, id: 'max' });
    await ws.next((m) => m.op === 'subscribed' && m.id === 'max');
    ws.close();
  });

  it('a request head over the header limit is 431', async () => {
    const r = await fetch(`${fwd.url}/healthz`, { headers: { 'x-filler': 'a'.repeat(20_000) } });
    expect(r.status).toBe(431);
    expect((await fetch(`${fwd.url}/healthz`)).status).toBe(200); // the server is fine
  });

  it('/api/v1/streams of user A shows nothing of user B; the admin sees both', async () => {
    const alice = await signIn(fwd.url, ALICE, 'alice');
    const bob = await signIn(fwd.url, BOB, 'bob');
    const admin = await signIn(fwd.url, ADMIN, 'admin');
    const ids = await Promise.all(
      [alice, bob].map(async (c) => (await c.get<{ user_id: string }>('/auth/current-user')).body.user_id),
    );
    const [aliceId = '', bobId = ''] = ids;
    // Each runs a strategy: the runner writes `started` into the user's own events stream.
    for (const c of [alice, bob]) {
      const s = await c.post<{ strategy_id: string }>('/strategies', strategyBody('mine'));
      expect((await c.post(`/strategies/${s.body.strategy_id}/run`)).status).toBe(202);
    }
    const bobEvents = `strategy.events.v1.user.${bobId}`;
    await waitFor(
      async () => (await redis.exists([`strategy.events.v1.user.${aliceId}`, bobEvents])) === 2,
      30_000,
      'both events streams',
    );
    // Bob's stream gets a reader named for his machine, and a dead letter.
    const consumer = uniq('bobs-laptop-');
    await sendCommand(redis, ['XGROUP', 'CREATE', bobEvents, 'reader', '0']);
    await sendCommand(redis, [
      'XREADGROUP',
      'GROUP',
      'reader',
      consumer,
      'COUNT',
      '1',
      'STREAMS',
      bobEvents,
      '>',
    ]);
    await redis.xAdd(`dlq:{${bobEvents}}`, '*', { reason: 'test' });
    // The market data's consumer names are hidden from users too.
    const feedConsumer = uniq('feed-host-');
    const prices = `md.prices.${UP_INSTRUMENT}`;
    const feedGroup = uniq('g');
    await sendCommand(redis, ['XGROUP', 'CREATE', prices, feedGroup, '$', 'MKSTREAM']);
    await sendCommand(redis, ['XGROUP', 'CREATECONSUMER', prices, feedGroup, feedConsumer]);

    const seen = async (c: HttpClient): Promise<{ names: string[]; text: string }> => {
      const r = await c.get<StreamsBody>('/api/v1/streams');
      expect(r.status).toBe(200);
      return { names: r.body.streams.map((s) => s.stream), text: r.text };
    };
    const a = await seen(alice);
    expect(a.names).toContain(`strategy.events.v1.user.${aliceId}`);
    expect(a.names).toContain(`md.prices.${UP_INSTRUMENT}`);
    expect(a.text).not.toContain(bobId);
    expect(a.text).not.toContain(consumer);
    expect(a.text).not.toContain(feedConsumer);
    expect(a.names.every((n) => n.startsWith('md.') || n.includes(aliceId))).toBe(true);
    const b = await seen(bob);
    expect(b.names).toContain(bobEvents);
    expect(b.names).toContain(`dlq:{${bobEvents}}`);
    expect(b.text).not.toContain(aliceId);
    expect(b.text).not.toContain(consumer); // consumer names are for the admin
    const all = await seen(admin);
    expect(all.names).toEqual(expect.arrayContaining([`strategy.events.v1.user.${aliceId}`, bobEvents]));
    expect(all.names).toContain('mgmt:strategy:commands');
    expect(all.text).toContain(consumer);
    expect(all.text).toContain(feedConsumer);
  }, 90_000);

  it('a hostile status stream, group and stream name render as text in Chromium; no script runs', async () => {
    browser = await launchChromium();
    const { page, errors, violations } = await watchedPage(browser);
    await page.goto(fwd.url);
    // Signed in from the page itself, as the admin (who sees every stream name).
    const login = await page.evaluate(
      async (payload) => {
        const r = await fetch('/auth/telegram/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(payload),
        });
        return r.status;
      },
      signedLoginPayload(BOT_TOKEN, { id: ADMIN, username: 'admin' }),
    );
    expect(login).toBe(200);
    await page.reload();
    await page.waitForSelector('#ws-state:text("live")', { timeout: 20_000 });
    await page.waitForSelector('#chart-instrument option', { state: 'attached', timeout: 20_000 });

    const key = `${HOSTILE(1)}"><b id=injected>`;
    await sendCommand(redis, [
      'XGROUP',
      'CREATE',
      `md.candles.1m.${UP_INSTRUMENT}`,
      HOSTILE(2),
      '$',
      'MKSTREAM',
    ]);
    await redis.xAdd(`md.${HOSTILE(3)}`, '*', { x: '1' });
    // The dashboard reads `md.status.replay` live: the simulated feed never writes it.
    await waitFor(
      async () => {
        await redis.xAdd('md.status.replay', '*', {
          source: 'replay',
          state: HOSTILE(4),
          state_since: HOSTILE(5),
          reason: HOSTILE(6),
          instruments: JSON.stringify({ [key]: { state: HOSTILE(7) } }),
        });
        return (await page.locator('#chart-instrument option').allTextContents()).includes(key);
      },
      20_000,
      'the hostile instrument in the chart menu',
    );
    await page.waitForSelector('#prices td', { timeout: 5000 });
    expect(await page.locator('#prices tr td:first-child').allTextContents()).toContain(key);
    await waitFor(
      async () => {
        const cells = await page.locator('#streams td').allTextContents();
        return cells.includes(HOSTILE(2)) && cells.includes(`md.${HOSTILE(3)}`);
      },
      20_000,
      'the hostile group and stream names in the streams table',
    );
    expect(await page.locator('img, #injected').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(errors).toEqual([]);
    expect(violations).toEqual([]); // nothing was even tried: the markup was never parsed
  }, 90_000);
});

describe('the request layer, in process with short limits', () => {
  const REQUEST_TIMEOUT_MS = 1000;
  let server: TestRedis;
  let redis: RedisClient;
  let db: RelationalDb;
  let runner: RunnerRuntime;
  let api: ApiService;

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
      settings: testSettings(
        { TELEGRAM_BOT_TOKEN: BOT_TOKEN },
        { server: serverLimits({ requestTimeoutMs: REQUEST_TIMEOUT_MS, streamsCacheMs: 60_000 }) },
      ),
      commandWaitMs: 5000,
    });
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    await runner?.close();
    await db?.close();
  });

  /** Open a socket, write `head`, then one byte of `drip` every 200 ms; the answer and when it closed. */
  const trickle = (head: string, drip: string) =>
    new Promise<{ answer: string; closedAfterMs: number }>((resolve, reject) => {
      const url = new URL(api.url);
      const socket = netConnect({ host: url.hostname, port: Number(url.port) });
      let answer = '';
      let sent = 0;
      const t0 = Date.now();
      const timer = setInterval(() => {
        if (!socket.destroyed) socket.write(drip[sent++ % drip.length] ?? 'a');
      }, 200);
      socket.on('connect', () => socket.write(head));
      socket.on('data', (d: Buffer) => (answer += d.toString()));
      socket.on('error', () => undefined); // a reset after the 408 is still a close
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ answer, closedAfterMs: Date.now() - t0 });
      });
      setTimeout(() => reject(new Error('the server kept the trickling socket open')), 10_000).unref();
    });

  // Dropped within 1.25 times the timeout (the check interval is a quarter of it), plus 1 s of margin.
  const BOUND_MS = REQUEST_TIMEOUT_MS * 1.25 + 1000;

  it('a body trickled byte by byte is dropped with 408 after the request timeout', async () => {
    const r = await trickle(
      `POST /strategies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
      '"',
    );
    expect(r.answer).toMatch(/^HTTP\/1\.1 408/);
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(r.closedAfterMs).toBeLessThan(BOUND_MS);
  });

  it('a head that never ends is dropped after the request timeout', async () => {
    const r = await trickle('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', 'abc');
    expect(r.closedAfterMs).toBeLessThan(BOUND_MS);
    expect(r.answer).not.toContain('"status":"ok"');
  });

  it('a runner refusal is a coded 409 with a fixed message; the runner text stays in the log', async () => {
    const c = await signIn(api.url, ALICE, 'alice');
    const s = await c.post<{ strategy_id: string }>('/strategies', {
      ...strategyBody('broken'),
      instrument_key: 'binance:spot:BTCUSDT',
    });
    // A stored spec the runner cannot parse: its parser's message would name the internals.
    await db.sql.query(`UPDATE strategies SET spec = '{"indicators":"x"}' WHERE id = $1`, [
      s.body.strategy_id,
    ]);
    const r = await c.post<{ error: string; code: string }>(`/strategies/${s.body.strategy_id}/run`);
    expect(r.status).toBe(409);
    expect(r.body).toEqual({ code: 'run_invalid', error: 'the stored strategy is not valid for the runner' });
  });

  it('/readyz of a broken database says only "unavailable" to anyone', async () => {
    const gone = openRelationalDb({ databaseUrl: (await startPostgres()).url }, silentLogger);
    await gone.close();
    const broken = await startApi({
      redis: redisOptions(server),
      db: gone.sql,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    });
    const r = await new HttpClient(broken.url).get('/readyz');
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ status: 'unavailable' });
    await broken.close();
  });

  it('one bus scan serves /api/v1/streams for every user while it is fresh', async () => {
    const users = await Promise.all([signIn(api.url, ALICE, 'alice'), signIn(api.url, BOB, 'bob')]);
    const scans = async (): Promise<number> => {
      const info = String(await sendCommand(redis, ['INFO', 'commandstats']));
      return Number(/cmdstat_scan:calls=(\d+)/.exec(info)?.[1] ?? 0);
    };
    const before = await scans();
    expect((await users[0]?.get('/api/v1/streams'))?.status).toBe(200);
    const one = (await scans()) - before;
    expect(one).toBeGreaterThan(0);
    for (let i = 0; i < 10; i++)
      for (const u of users) expect((await u.get('/api/v1/streams')).status).toBe(200);
    expect((await scans()) - before).toBe(one);
  });
});

describe('stream IDs: what Redis accepts is what the API accepts', () => {
  it('Redis takes the 64-bit maximum and refuses one more; so does isStreamId', async () => {
    const redis = await connect(await startRedis({ persistence: 'none' }));
    const key = uniq('ids-');
    const top = `${MAX}-${MAX}`;
    expect(isStreamId(top)).toBe(true);
    expect(await sendCommand(redis, ['XADD', key, top, 'f', 'v'])).toBe(top);
    expect(await sendCommand(redis, ['XRANGE', key, top, '+'])).toHaveLength(1);
    for (const over of [`18446744073709551616-0`, `0-18446744073709551616`]) {
      expect(isStreamId(over), over).toBe(false);
      await expect(sendCommand(redis, ['XRANGE', key, over, '+']), over).rejects.toThrow(
        /Invalid stream ID/i,
      );
    }
  });
});
