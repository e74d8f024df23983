/**
 * The 60-second WebSocket run (`run_ws_60s`): "A WebSocket client run for 60 s receives every candle and
 * snapshot published in that time, in order." A real ApiService and a real simulated feed (speed 60: about
 * one 1m candle a second per instrument; a price snapshot per instrument every second) publishing to a
 * private redis-server; one WebSocket client subscribed to the 1m candles and the prices of both instruments
 * for a real 60 s. Afterwards what it received is compared with XRANGE of each stream: the same IDs, in the
 * same order, nothing missing, nothing twice.
 *
 * The client subscribes before the feed starts (the streams do not exist yet), and the feed is stopped
 * (flushing what it holds) before the comparison, so "everything in the stream" is exactly "everything
 * published while the client was subscribed".
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiService } from '../../src/app/start-api.js';
import { streams } from '../../src/contracts/catalog.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { silentLogger } from '../../src/util/log.js';
import { resolveMarketData, startFeed, type FeedRuntime } from '../../src/app/feed.js';
import {
  announceFeed,
  BOT_TOKEN,
  HttpClient,
  LiveSocket,
  startApi,
  testSettings,
  type LiveMessage,
} from '../helpers/api.js';
import { startPostgres } from '../helpers/postgres.js';
import { connect, startRedis, type TestRedis } from '../helpers/redis.js';

const RUN_MS = 60_000;
const INSTRUMENTS = ['sim:spot:BTCUSDT', 'sim:spot:ETHUSDT'] as const;

let server: TestRedis;
let redis: RedisClient;
let db: RelationalDb;
let api: ApiService;
let feed: FeedRuntime | undefined;

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
  db = openRelationalDb({ databaseUrl: (await startPostgres()).url }, silentLogger);
  await db.migrate();
  api = await startApi({
    redis: { url: server.url },
    db: db.sql,
    settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    live: { blockMs: 1000 },
  });
});

afterAll(async () => {
  await feed?.close();
  await api.close();
  await db.close();
});

async function subscribed(s: LiveSocket, msg: Record<string, unknown>): Promise<LiveMessage> {
  const at = s.messages.length;
  s.send(msg);
  return s.next((m) => m.op === 'subscribed' || m.op === 'error', 10_000, at);
}

describe('run_ws_60s: 60 s of live WebSocket clients', () => {
  it('a WebSocket client run for 60 s receives every candle and snapshot published in that time, in order', async () => {
    const client = new HttpClient(api.url);
    await client.login(BOT_TOKEN, { id: '900600', username: 'ws60' });
    const s = await LiveSocket.open(api.url, client.cookie);
    // The relay takes subscriptions to served instruments only: the feed's status as it starts.
    await announceFeed(redis, 'simulated', INSTRUMENTS);

    const wanted: string[] = [];
    for (const instrument of INSTRUMENTS) {
      const c = await subscribed(s, { op: 'subscribe', channel: 'candles', instrument, timeframe: '1m' });
      expect(c).toMatchObject({
        op: 'subscribed',
        channel: 'candles',
        stream: streams.candles('1m', instrument),
      });
      const p = await subscribed(s, { op: 'subscribe', channel: 'prices', instrument });
      expect(p).toMatchObject({ op: 'subscribed', channel: 'prices', stream: streams.prices(instrument) });
      wanted.push(streams.candles('1m', instrument), streams.prices(instrument));
    }
    for (const stream of wanted) expect(await redis.exists(stream)).toBe(0);

    const md = resolveMarketData(
      { price_snap_interval_seconds: 1, status_interval_seconds: 1 },
      { source: 'simulated', instruments: [...INSTRUMENTS], speed: 60 },
    );
    const t0 = Date.now();
    feed = await startFeed({ md, redis: { url: server.url }, registry: new Registry(), log: silentLogger });
    await new Promise((r) => setTimeout(r, RUN_MS));
    await feed.close(); // flushes what it holds: after this nothing more is published
    feed = undefined;
    const ranMs = Date.now() - t0;

    // What the streams hold is what was published while the client listened.
    const published = new Map<string, { id: string; message: Record<string, string> }[]>();
    for (const stream of wanted) published.set(stream, await redis.xRange(stream, '-', '+'));
    const lastIds = new Map([...published].map(([stream, es]) => [stream, es[es.length - 1]?.id]));
    await s.until(
      () =>
        [...lastIds].every(
          ([stream, last]) => last === undefined || s.entries(stream).some((m) => m.id === last),
        ),
      15_000,
      'the last published entry of every stream',
    );
    await new Promise((r) => setTimeout(r, 500)); // anything extra (a duplicate) would show now

    expect(s.closeCode).toBeUndefined();
    expect(s.messages.filter((m) => m.op === 'error')).toEqual([]);
    const summary: Record<string, { published: number; received: number }> = {};
    for (const stream of wanted) {
      const expected = published.get(stream) ?? [];
      const got = s.entries(stream);
      summary[stream] = { published: expected.length, received: got.length };
      const gotIds = got.map((m) => String(m.id));
      // identical IDs over the same range, in order: nothing missing, nothing twice
      expect(gotIds[0], stream).toBe(expected[0]?.id);
      expect(gotIds[gotIds.length - 1], stream).toBe(expected[expected.length - 1]?.id);
      expect(gotIds, stream).toEqual(expected.map((e) => e.id));
      expect(new Set(gotIds).size, stream).toBe(gotIds.length);
      // and as published: the same fields, on the channel asked for
      for (const [i, m] of got.entries()) {
        expect(m.fields, `${stream} ${gotIds[i] ?? ''}`).toEqual(expected[i]?.message);
        expect(m.channel).toBe(stream.startsWith('md.candles.') ? 'candles' : 'prices');
      }
    }
    // About one candle and one snapshot a second per instrument for the whole run.
    const seconds = ranMs / 1000;
    for (const instrument of INSTRUMENTS) {
      expect(summary[streams.candles('1m', instrument)]?.received).toBeGreaterThanOrEqual(seconds * 0.8);
      expect(summary[streams.prices(instrument)]?.received).toBeGreaterThanOrEqual(seconds * 0.8);
    }
    // All four streams interleave on one socket, each in its own order.
    expect(s.entries().length).toBe(Object.values(summary).reduce((a, v) => a + v.received, 0));
    s.close();
  }, 120_000);
});
