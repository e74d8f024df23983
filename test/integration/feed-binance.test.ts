/**
 * Fake Binance on loopback -> binance source -> feed -> Redis: the published stream equals the expected
 * candles (none missing, none twice, in order) through a repeated closing message, a disconnect in
 * mid-minute whose closed minute REST fills, and a serverShutdown.
 */
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { CATALOG_POLICY, streams } from '../../src/contracts/catalog.js';
import { StreamProducer } from '../../src/bus/producer.js';
import { silentLogger } from '../../src/util/log.js';
import { candleCodec } from '../../src/contracts/market-data.js';
import { FeedMetrics } from '../../src/marketdata/feed-metrics.js';
import { FeedService } from '../../src/marketdata/feed.js';
import { createBinanceSource } from '../../src/marketdata/sources/binance/source.js';
import { FakeBinance, fakeKlineValues, MINUTE as M } from '../helpers/fake-binance.js';
import { connect, startRedis, waitFor } from '../helpers/redis.js';

const KEY = 'binance:spot:BTCUSDT';
const T0 = Date.UTC(2026, 1, 10, 10, 0);
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

describe('feed with the binance source', () => {
  it('publishes each minute once, in order, whatever the socket does', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    let t = T0 + 30_000;
    const now = (): number => t;
    const fake = await FakeBinance.start({ now });
    closers.push(() => fake.close());
    const registry = new Registry();
    const source = createBinanceSource({
      instruments: [KEY],
      marketIds: { [KEY]: 1 },
      wsUrl: fake.wsUrl,
      restUrl: fake.restUrl,
      now,
      reconnectBaseMs: 20,
      reconnectMaxMs: 200,
      gapCheckIntervalMs: 10,
      lateGraceMs: 5000,
    });
    const feed = new FeedService({
      source,
      producer: new StreamProducer(redis, { policy: CATALOG_POLICY }),
      redis,
      metrics: new FeedMetrics(registry),
      log: silentLogger,
    });
    closers.push(() => feed.close());
    await feed.start();
    const stream = streams.candles('1m', KEY);
    const published = async (): Promise<number> => redis.xLen(stream);

    await fake.waitForConnections(1);
    t = T0 + M + 100;
    fake.pushKline('BTCUSDT', T0);
    fake.pushKline('BTCUSDT', T0); // the closing message twice
    t = T0 + 2 * M + 100;
    fake.pushKline('BTCUSDT', T0 + M);
    await waitFor(async () => (await published()) === 2, 10_000, 'first two minutes');

    t = T0 + 2 * M + 30_000;
    fake.dropAll(); // mid-minute: 10:02 closes while we are away
    t = T0 + 3 * M + 100;
    await fake.waitForConnections(2);
    await waitFor(async () => (await published()) === 3, 10_000, '10:02 filled from REST');

    fake.serverShutdown();
    await fake.waitForConnections(3);
    // The source fills what closed while away as soon as it sees the socket open; move the clock only
    // after that, or 10:03 is (rightly) fetched from REST before its closing message is pushed.
    await waitFor(() => source.stats().connects === 3, 10_000, 'third connect seen');
    t = T0 + 4 * M + 100;
    fake.pushKline('BTCUSDT', T0 + 3 * M);
    fake.pushKline('BTCUSDT', T0 + 2 * M); // a late copy of a minute REST already gave
    await waitFor(async () => (await published()) === 4, 10_000, '10:03 after serverShutdown');
    await new Promise((r) => setTimeout(r, 300)); // anything still in flight would show now

    const entries = await redis.xRange(stream, '-', '+');
    expect(entries.map((e) => e.id)).toEqual([0, 1, 2, 3].map((i) => `${T0 + i * M}-0`));
    const candles = entries.map((e) => candleCodec.decode(e.message).candle);
    expect(candles.map((c) => c.origin)).toEqual(['ws', 'ws', 'rest', 'ws']);
    for (const c of candles) {
      const v = fakeKlineValues('BTCUSDT', c.tsOpen);
      expect([c.open, c.high, c.low, c.close, c.volumeBase]).toEqual([v.o, v.h, v.l, v.c, v.v].map(Number));
      expect(c.marketId).toBe(1);
    }
  });
});
