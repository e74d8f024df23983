/**
 * The live relay (`/api/v1/live/ws`, docs/contracts.md §14.3) against a real Redis: entries in order,
 * resume from a last-seen ID, per-user streams only for their user, hostile input answered with error
 * messages, one shared reader connection for many clients, heartbeats, and a client that never reads
 * disconnected with 1013 while the server's queue stays within its bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SLOW_CLIENT_REASON } from '../../src/api/live/client.js';
import type { ApiService } from '../../src/app/start-api.js';
import { streams } from '../../src/contracts/catalog.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { silentLogger } from '../../src/util/log.js';
import {
  announceFeed,
  BOT_TOKEN,
  HttpClient,
  LiveSocket,
  RawWebSocket,
  startApi,
  testSettings,
  type LiveMessage,
} from '../helpers/api.js';
import { startPostgres } from '../helpers/postgres.js';
import { connect, startRedis, uniq, waitFor, type TestRedis, redisOptions } from '../helpers/redis.js';

let server: TestRedis;
let redis: RedisClient;
let db: RelationalDb;
let api: ApiService;
let alice: HttpClient;
let aliceId: string;

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
  db = openRelationalDb({ databaseUrl: (await startPostgres()).url }, silentLogger);
  await db.migrate();
  api = await startApi({
    redis: redisOptions(server),
    db: db.sql,
    settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    live: { blockMs: 1000, served: SERVED },
  });
  alice = new HttpClient(api.url);
  aliceId = (await alice.login(BOT_TOKEN, { id: '900001', username: 'alice' })).user_id;
});

afterAll(async () => {
  await api.close();
  await db.close();
});

// The instruments of this file, each announced in this file's feed status before it is subscribed to.
const FEED = uniq('feed');
const served: string[] = [];
async function key(): Promise<string> {
  const k = `binance:spot:${uniq('S').toUpperCase()}`;
  served.push(k);
  await announceFeed(redis, FEED, served);
  return k;
}
// Each test subscribes to instruments announced just before: re-read the status on every miss.
const SERVED = { missRefreshMs: 0 };

function candleFields(k: string, ms: number): Record<string, string> {
  return {
    schema_version: '1',
    market_id: '1',
    symbol: k.split(':')[2] ?? '',
    instrument_key: k,
    ts_open: new Date(ms).toISOString(),
    ts_close: new Date(ms + 60_000).toISOString(),
    open: '100',
    high: '101',
    low: '99',
    close: String(100 + ((ms / 60_000) % 7)),
    volume_base: '1',
    volume_quote: '',
    source: 'test',
    ingested_at: new Date(ms + 61_000).toISOString(),
    ingest_id: 'x',
  };
}

function priceFields(k: string, n: number): Record<string, string> {
  return {
    schema_version: '1',
    symbol: k.split(':')[2] ?? '',
    instrument_key: k,
    bid: String(100 + n),
    ask: String(100.5 + n),
    mid: String(100.25 + n),
    tick_ts: String(n),
    snap_ts: String(n),
  };
}

async function subscribed(s: LiveSocket, msg: Record<string, unknown>): Promise<LiveMessage> {
  const at = s.messages.length;
  s.send(msg);
  return s.next((m) => m.op === 'subscribed' || m.op === 'error', 10_000, at);
}

async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
  const r = await new HttpClient(api.url).get('/api/v1/live/metrics');
  let total = 0;
  for (const line of r.text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      total += Number(line.split(' ').pop());
  }
  return total;
}

describe('live relay', () => {
  it('candles and prices published on Redis arrive in order, as {channel, stream, id, fields}', async () => {
    const k = await key();
    const s = await LiveSocket.open(api.url, alice.cookie);
    const c = await subscribed(s, {
      op: 'subscribe',
      channel: 'candles',
      instrument: k,
      timeframe: '1m',
      id: 1,
    });
    expect(c).toMatchObject({ op: 'subscribed', channel: 'candles', stream: `md.candles.1m.${k}`, id: 1 });
    expect(await subscribed(s, { op: 'subscribe', channel: 'prices', instrument: k })).toMatchObject({
      op: 'subscribed',
      stream: `md.prices.${k}`,
    });
    const t0 = Date.UTC(2026, 1, 10, 12, 0);
    const priceIds: string[] = [];
    for (let i = 0; i < 100; i++) {
      await redis.xAdd(streams.candles('1m', k), `${t0 + i * 60_000}-0`, candleFields(k, t0 + i * 60_000));
      priceIds.push(await redis.xAdd(streams.prices(k), '*', priceFields(k, i)));
    }
    await s.until(() => s.entries().length >= 200, 10_000, '200 entries');
    const candles = s.entries(`md.candles.1m.${k}`);
    expect(candles.map((m) => m.id)).toEqual(Array.from({ length: 100 }, (_, i) => `${t0 + i * 60_000}-0`));
    expect(candles[3]).toEqual({
      channel: 'candles',
      stream: `md.candles.1m.${k}`,
      id: `${t0 + 3 * 60_000}-0`,
      fields: candleFields(k, t0 + 3 * 60_000),
    });
    const prices = s.entries(`md.prices.${k}`);
    expect(prices.map((m) => m.id)).toEqual(priceIds);
    expect(prices.map((m) => m.fields?.['bid'])).toEqual(
      Array.from({ length: 100 }, (_, i) => String(100 + i)),
    );
    expect(prices.every((m) => m.channel === 'prices')).toBe(true);

    // unsubscribe: nothing more from that stream
    const at = s.messages.length;
    s.send({ op: 'unsubscribe', channel: 'prices', instrument: k });
    await s.next((m) => m.op === 'unsubscribed', 5000, at);
    await redis.xAdd(streams.prices(k), '*', priceFields(k, 999));
    await redis.xAdd(streams.candles('1m', k), `${t0 + 100 * 60_000}-0`, candleFields(k, t0 + 100 * 60_000));
    await s.next((m) => m.id === `${t0 + 100 * 60_000}-0`);
    expect(s.entries(`md.prices.${k}`)).toHaveLength(100);
    s.close();
  });

  it('status by source name', async () => {
    const source = uniq('src');
    const s = await LiveSocket.open(api.url, alice.cookie);
    expect(await subscribed(s, { op: 'subscribe', channel: 'status', source })).toMatchObject({
      stream: `md.status.${source}`,
    });
    await redis.xAdd(streams.feedStatus(source), '*', { state: 'STREAM' });
    expect((await s.next((m) => m.op === undefined && m.channel === 'status')).fields).toEqual({
      state: 'STREAM',
    });
    s.close();
  });

  it('resume from a last-seen ID delivers exactly the missed entries, then live ones', async () => {
    const k = await key();
    const stream = streams.prices(k);
    const before = await redis.xAdd(stream, '*', priceFields(k, 0)); // older than anything we will see
    const first = await LiveSocket.open(api.url, alice.cookie);
    await subscribed(first, { op: 'subscribe', channel: 'prices', instrument: k });
    const seen: string[] = [];
    for (let i = 1; i <= 5; i++) seen.push(await redis.xAdd(stream, '*', priceFields(k, i)));
    await first.until(() => first.entries().length === 5, 5000, 'five entries');
    expect(first.entries().map((m) => m.id)).toEqual(seen);
    first.ws.terminate(); // the connection drops

    const missed: string[] = [];
    for (let i = 6; i <= 1200; i++) missed.push(await redis.xAdd(stream, '*', priceFields(k, i)));
    const again = await LiveSocket.open(api.url, alice.cookie);
    const sub = await subscribed(again, {
      op: 'subscribe',
      channel: 'prices',
      instrument: k,
      from: seen[seen.length - 1],
    });
    expect(sub).toMatchObject({ op: 'subscribed', from: seen[seen.length - 1] });
    const live: string[] = [];
    // publish while the backlog is being sent: these must come after it, once
    for (let i = 1201; i <= 1210; i++) live.push(await redis.xAdd(stream, '*', priceFields(k, i)));
    const caught = await again.next((m) => m.op === 'caught_up');
    expect(caught['replayed']).toBeGreaterThan(0);
    live.push(await redis.xAdd(stream, '*', priceFields(k, 1211)));
    await again.until(() => again.entries().length === missed.length + live.length, 10_000, 'all entries');
    expect(again.entries().map((m) => m.id)).toEqual([...missed, ...live]);
    expect(again.entries().some((m) => m.id === before)).toBe(false);

    // from "0": everything the stream keeps
    const all = await LiveSocket.open(api.url, alice.cookie);
    await subscribed(all, { op: 'subscribe', channel: 'prices', instrument: k, from: '0' });
    await all.next((m) => m.op === 'caught_up');
    expect(all.entries().map((m) => m.id)).toEqual([before, ...seen, ...missed, ...live]);
    again.close();
    all.close();
  });

  it("events and metrics: only the signed-in user's own streams", async () => {
    const bob = new HttpClient(api.url);
    const bobId = (await bob.login(BOT_TOKEN, { id: '900002', username: 'bob' })).user_id;
    const a = await LiveSocket.open(api.url, alice.cookie);
    const b = await LiveSocket.open(api.url, bob.cookie);
    expect(await subscribed(a, { op: 'subscribe', channel: 'events' })).toMatchObject({
      stream: `strategy.events.v1.user.${aliceId}`,
    });
    expect(await subscribed(a, { op: 'subscribe', channel: 'metrics' })).toMatchObject({
      stream: `strategy.metrics.v1.user.${aliceId}`,
    });
    expect(await subscribed(b, { op: 'subscribe', channel: 'events' })).toMatchObject({
      stream: `strategy.events.v1.user.${bobId}`,
    });
    // no way to name another user's stream
    for (const attempt of [
      { op: 'subscribe', channel: 'events', user_id: bobId },
      { op: 'subscribe', channel: 'events', stream: streams.strategyEvents(bobId) },
      { op: 'subscribe', channel: 'events', instrument: bobId },
      { op: 'subscribe', channel: 'events', source: bobId },
    ]) {
      const r = await subscribed(a, attempt);
      expect(r.op, JSON.stringify(attempt)).toBe('error');
      expect(r.code).toBe('bad_request');
    }
    await redis.xAdd(streams.strategyEvents(bobId), '*', { type: 'signal', who: 'bob' });
    await redis.xAdd(streams.strategyEvents(aliceId), '*', { type: 'signal', who: 'alice' });
    await redis.xAdd(streams.strategyMetrics(aliceId), '*', { type: 'metric', who: 'alice' });
    await redis.xAdd(streams.strategyMetrics(bobId), '*', { type: 'metric', who: 'bob' });
    await a.until(() => a.entries().length >= 2, 5000, "alice's entries");
    await b.until(() => b.entries().length >= 1, 5000, "bob's entries");
    await new Promise((r) => setTimeout(r, 200));
    expect(a.entries().map((m) => [m.channel, m.fields?.['who']])).toEqual([
      ['events', 'alice'],
      ['metrics', 'alice'],
    ]);
    expect(b.entries().map((m) => [m.channel, m.fields?.['who']])).toEqual([['events', 'bob']]);
    a.close();
    b.close();
  });

  it('hostile instrument keys, unknown channels and garbage get error messages; the socket stays usable', async () => {
    const s = await LiveSocket.open(api.url, alice.cookie);
    const bad: [Record<string, unknown> | string, string][] = [
      [{ op: 'subscribe', channel: 'candles', instrument: '../../etc/passwd' }, 'invalid_instrument'],
      [
        { op: 'subscribe', channel: 'prices', instrument: 'binance:spot:BTC\r\nFLUSHALL' },
        'invalid_instrument',
      ],
      [{ op: 'subscribe', channel: 'prices', instrument: '*' }, 'invalid_instrument'],
      [{ op: 'subscribe', channel: 'prices', instrument: 'dlq:{md.prices.x}' }, 'invalid_instrument'],
      [
        { op: 'subscribe', channel: 'prices', instrument: `binance:spot:${'A'.repeat(120)}` },
        'invalid_instrument',
      ],
      [{ op: 'subscribe', channel: 'prices', instrument: 'x'.repeat(5000) }, 'bad_request'],
      [{ op: 'subscribe', channel: 'prices' }, 'bad_request'],
      [
        { op: 'subscribe', channel: 'candles', instrument: 'binance:spot:BTCUSDT', timeframe: '7m' },
        'invalid_timeframe',
      ],
      [{ op: 'subscribe', channel: 'status', source: 'Bad Source!' }, 'invalid_source'],
      [{ op: 'subscribe', channel: 'secrets', instrument: 'binance:spot:BTCUSDT' }, 'unknown_channel'],
      [
        { op: 'subscribe', channel: 'prices', instrument: 'binance:spot:BTCUSDT', from: '1; DROP' },
        'invalid_from',
      ],
      [{ op: 'explode' }, 'unknown_op'],
      [{ op: 'subscribe', channel: ['prices'] }, 'bad_request'],
      ['{"op":', 'bad_json'],
      ['[1,2,3]', 'bad_request'],
      ['null', 'bad_request'],
    ];
    for (const [msg, code] of bad) {
      const at = s.messages.length;
      if (typeof msg === 'string') s.ws.send(msg);
      else s.send(msg);
      const r = await s.next((m) => m.op === 'error', 5000, at);
      expect(r.code, JSON.stringify(msg).slice(0, 100)).toBe(code);
      expect(typeof r['message']).toBe('string');
    }
    s.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await s.next(
      (m) => m.op === 'error' && m.code === 'bad_request' && String(m['message']).includes('binary'),
    );
    const at = s.messages.length;
    s.send({ op: 'unsubscribe', channel: 'prices', instrument: 'binance:spot:NEVER' });
    expect((await s.next((m) => m.op === 'error', 5000, at)).code).toBe('not_subscribed');
    // still usable
    const k = await key();
    await subscribed(s, { op: 'subscribe', channel: 'prices', instrument: k });
    expect((await subscribed(s, { op: 'subscribe', channel: 'prices', instrument: k })).code).toBe(
      'already_subscribed',
    );
    const id = await redis.xAdd(streams.prices(k), '*', priceFields(k, 1));
    expect((await s.next((m) => m.id === id)).stream).toBe(`md.prices.${k}`);
    const p = s.messages.length;
    s.send({ op: 'ping' });
    await s.next((m) => m.op === 'pong', 5000, p);
    expect(s.closeCode).toBeUndefined();
    // nothing was created in Redis for the hostile names
    expect(await redis.keys('*passwd*')).toEqual([]);
    expect(await redis.keys('*FLUSHALL*')).toEqual([]);
    expect(await redis.dbSize()).toBeGreaterThan(0);
    s.close();
  });

  it('refuses upgrades without a session (401) and from another origin (403)', async () => {
    await expect(LiveSocket.open(api.url, undefined)).rejects.toThrow(/401/);
    await expect(
      new Promise<void>((resolve, reject) => {
        void import('ws').then(({ default: WebSocket }) => {
          const ws = new WebSocket(`${api.url.replace('http', 'ws')}/api/v1/live/ws`, {
            headers: { cookie: alice.cookie ?? '', origin: 'https://evil.example' },
          });
          ws.once('open', () => resolve());
          ws.once('unexpected-response', (_q, res) => reject(new Error(`status ${res.statusCode}`)));
          ws.once('error', reject);
        });
      }),
    ).rejects.toThrow(/403/);
  });

  it('refuses more live connections per user than the limit (429), others still connect', async () => {
    const small = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
      live: { maxClientsPerUser: 2, blockMs: 1000 },
    });
    const a = new HttpClient(small.url);
    await a.login(BOT_TOKEN, { id: '900020' });
    const b = new HttpClient(small.url);
    await b.login(BOT_TOKEN, { id: '900021' });
    const s1 = await LiveSocket.open(small.url, a.cookie);
    const s2 = await LiveSocket.open(small.url, a.cookie);
    await expect(LiveSocket.open(small.url, a.cookie)).rejects.toThrow(/429/);
    const other = await LiveSocket.open(small.url, b.cookie);
    s1.close();
    await waitFor(() => small.liveClients === 2, 5000, 'one closed');
    const s3 = await LiveSocket.open(small.url, a.cookie);
    for (const s of [s2, s3, other]) s.close();
    await small.close();
  });

  it('many clients, many streams: one reader connection (plus one command connection) to Redis', async () => {
    const sockets: LiveSocket[] = [];
    const keys: string[] = [];
    for (let i = 0; i < 12; i++) {
      const s = await LiveSocket.open(api.url, alice.cookie);
      const k = await key();
      keys.push(k);
      await subscribed(s, { op: 'subscribe', channel: 'prices', instrument: k });
      await subscribed(s, { op: 'subscribe', channel: 'prices', instrument: keys[0] ?? k }).catch(
        () => undefined,
      );
      sockets.push(s);
    }
    const apiConns = (await redis.clientList()).filter((c) => c.name === 'marketbus-api');
    expect(apiConns).toHaveLength(2);
    for (const [i, k] of keys.entries()) await redis.xAdd(streams.prices(k), '*', priceFields(k, i));
    for (const [i, s] of sockets.entries()) {
      const k = keys[i] ?? '';
      await s.next((m) => m.stream === `md.prices.${k}`);
    }
    // everyone subscribed to the first stream got its entry
    for (const s of sockets) await s.next((m) => m.stream === `md.prices.${keys[0] ?? ''}`);
    expect(await metricValue('live_ws_clients')).toBeGreaterThanOrEqual(12);
    expect(await metricValue('live_relay_streams')).toBeGreaterThanOrEqual(12);
    for (const s of sockets) s.close();
    await waitFor(async () => (await metricValue('live_ws_clients')) === 0, 5000, 'clients gone');
  });

  it('/api/v1/live/metrics is Prometheus text', async () => {
    const r = await new HttpClient(api.url).get('/api/v1/live/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/plain/);
    for (const name of [
      'live_ws_clients',
      'live_ws_subscriptions',
      'live_ws_messages_sent_total',
      'live_relay_xread_total',
      'live_relay_entries_read_total',
      'live_ws_send_queue_high_water_bytes',
    ])
      expect(r.text).toContain(`# TYPE ${name}`);
    expect(await metricValue('live_relay_xread_total')).toBeGreaterThan(0);
    expect(await metricValue('live_ws_messages_sent_total', { channel: 'prices' })).toBeGreaterThan(0);
  });
});

describe('live relay under a slow client', () => {
  it('a client that never reads is closed with 1013 while the server keeps its queue bounded', async () => {
    const limits = { maxBufferedBytes: 256 * 1024, maxQueueBytes: 512 * 1024, maxQueueMessages: 100_000 };
    const slowApi = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
      live: { ...limits, blockMs: 1000, served: SERVED },
    });
    const c = new HttpClient(slowApi.url);
    await c.login(BOT_TOKEN, { id: '900009' });
    const k = await key();
    const stream = streams.prices(k);
    const raw = await RawWebSocket.open('127.0.0.1', slowApi.port, '/api/v1/live/ws', c.cookie);
    raw.sendText(JSON.stringify({ op: 'subscribe', channel: 'prices', instrument: k }));
    raw.pause(); // from now on the client reads nothing
    const subs = async (): Promise<number> =>
      (await slowApi.liveMetrics.subscriptions.get()).values[0]?.value ?? 0;
    await waitFor(async () => (await subs()) === 1, 5000, 'subscription');
    // A normal client on the same stream must keep getting everything.
    const good = await LiveSocket.open(slowApi.url, c.cookie);
    await subscribed(good, { op: 'subscribe', channel: 'prices', instrument: k });

    const disconnects = async (): Promise<number> =>
      (await slowApi.liveMetrics.disconnects.get()).values.find((v) => v.labels.reason === 'slow_client')
        ?.value ?? 0;
    const pad = 'p'.repeat(4000);
    const heapBefore = process.memoryUsage().heapUsed;
    let published = 0;
    while ((await disconnects()) === 0) {
      const batch = redis.multi();
      for (let i = 0; i < 200; i++) batch.xAdd(stream, '*', { ...priceFields(k, published + i), pad });
      await batch.exec();
      published += 200;
      if (published > 40_000) throw new Error('the slow client was never disconnected');
      await new Promise((r) => setTimeout(r, 5));
    }
    const publishedBytes = published * 4200;
    // the queue never went past its bound (plus the one message that crossed it)
    expect(slowApi.liveMetrics.queueHighWater).toBeLessThanOrEqual(limits.maxQueueBytes + 8 * 1024);
    expect(slowApi.liveClients).toBe(1); // only the good client is left
    expect(await subs()).toBe(1);
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    expect(heapGrowth).toBeLessThan(Math.max(64 * 1024 * 1024, publishedBytes / 2));

    const end = await raw.readAll();
    expect(end.closeCode).toBe(1013);
    expect(end.reason).toBe(SLOW_CLIENT_REASON);
    expect(end.texts).toBeGreaterThan(0);
    expect(end.texts).toBeLessThan(published);
    raw.socket.destroy();

    // the good client got every entry, in order
    await good.until(() => good.entries().length === published, 20_000, 'all entries for the good client');
    const ids = good.entries().map((m) => m.id ?? '');
    expect(new Set(ids).size).toBe(published);
    good.close();
    await slowApi.close();
  });

  it('heartbeats: ping messages and ping frames; a silent client is terminated, a flooding one closed', async () => {
    const hbApi = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
      live: { heartbeatMs: 200, blockMs: 1000, floodMessages: 20 },
    });
    const c = new HttpClient(hbApi.url);
    await c.login(BOT_TOKEN, { id: '900010' });
    const s = await LiveSocket.open(hbApi.url, c.cookie);
    let frames = 0;
    s.ws.on('ping', () => frames++);
    await s.next((m) => m.op === 'ping' && typeof m['ts'] === 'number');
    await s.until(() => frames >= 2, 5000, 'ping frames');
    const raw = await RawWebSocket.open('127.0.0.1', hbApi.port, '/api/v1/live/ws', c.cookie);
    raw.pause();
    await waitFor(
      async () =>
        ((await hbApi.liveMetrics.disconnects.get()).values.find((v) => v.labels.reason === 'ping_timeout')
          ?.value ?? 0) === 1,
      5000,
      'silent client terminated',
    );
    expect(s.closeCode).toBeUndefined(); // the answering client stays
    // a client that floods the server with messages is closed with 1008
    const flood = await LiveSocket.open(hbApi.url, c.cookie);
    for (let i = 0; i < 30; i++) flood.send({ op: 'ping' });
    await flood.until(() => flood.closeCode !== undefined, 5000, 'flood close');
    expect(flood.closeCode).toBe(1008);
    expect(flood.closeReason).toBe('too many messages');
    s.close();
    await hbApi.close();
  });
});
