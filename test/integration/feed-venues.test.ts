/**
 * One feed, several venues: a config naming sim and binance keys (no `market_data.source`) runs the
 * simulated source and the binance source (against the fake Binance on loopback) in one FeedService,
 * with one `md.status.<source>` each, the candles of both on their streams, and the `source` label on
 * the metrics per venue.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { streams } from '../../src/contracts/catalog.js';
import { candleCodec } from '../../src/contracts/market-data.js';
import { resolveMarketData, startFeed, type FeedRuntime } from '../../src/app/feed.js';
import { silentLogger } from '../../src/util/log.js';
import { FakeBinance, fakeKlineValues, MINUTE as M } from '../helpers/fake-binance.js';
import { connect, redisOptions, startRedis, waitFor } from '../helpers/redis.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** The values of a metric by the labels given, as `label=value,...` keys. */
async function series(
  registry: Registry,
  name: string,
  labels: readonly string[],
): Promise<Map<string, number>> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const out = new Map<string, number>();
  for (const v of m?.values ?? []) {
    const key = labels.map((l) => `${l}=${String(v.labels[l])}`).join(',');
    out.set(key, (out.get(key) ?? 0) + v.value);
  }
  return out;
}

describe('feed with several venues', () => {
  it('runs one source per venue: a status stream each, candles of both, per-venue metric labels', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    closers.push(() => redis.close());
    const fake = await FakeBinance.start({ now: Date.now });
    closers.push(() => fake.close());
    const registry = new Registry();
    const SIM = 'sim:spot:BTCUSDT';
    const BIN = 'binance:spot:BTCUSDT';
    const md = resolveMarketData(
      {
        instruments: [SIM, { key: BIN, market_id: 3 }],
        price_snap_interval_seconds: 1,
        status_interval_seconds: 1,
        sources: {
          simulated: { speed: 600 },
          binance: { ws_url: fake.wsUrl, rest_url: fake.restUrl },
        },
      },
      {},
    );
    const rt: FeedRuntime = await startFeed({ md, redis: redisOptions(server), registry, log: silentLogger });
    closers.push(() => rt.close());
    expect(rt.feed.sourceNames).toEqual(['simulated', 'binance']);

    await fake.waitForConnections(1);
    const closed = Math.floor(Date.now() / M) * M - M; // the last minute that has closed
    fake.pushBookTicker('BTCUSDT', '100.10', '100.20');
    fake.pushKline('BTCUSDT', closed);
    await waitFor(
      async () => (await redis.xLen(streams.candles('1m', BIN))) >= 1,
      10_000,
      'the binance candle',
    );
    await waitFor(
      async () => (await redis.xLen(streams.candles('1m', SIM))) >= 3,
      20_000,
      'simulated candles',
    );

    const latest = async (source: string): Promise<Record<string, string>> =>
      (await redis.xRevRange(streams.feedStatus(source), '+', '-', { COUNT: 1 }))[0]?.message ?? {};
    await waitFor(
      async () =>
        (await latest('binance'))['state'] === 'STREAM' && (await latest('simulated'))['state'] === 'STREAM',
      10_000,
      'both statuses STREAM',
    );
    const bin = await latest('binance');
    const sim = await latest('simulated');
    expect(bin['source']).toBe('binance');
    expect(Object.keys(JSON.parse(bin['instruments'] ?? '{}') as object)).toEqual([BIN]);
    expect(Object.keys(JSON.parse(sim['instruments'] ?? '{}') as object)).toEqual([SIM]);
    // One queue for the service: both statuses carry the same supervisor counters' names.
    expect(Object.keys(JSON.parse(bin['supervisor'] ?? '{}') as object)).toContain('queue_depth_total');

    const first = (await redis.xRange(streams.candles('1m', BIN), '-', '+'))[0];
    const c = candleCodec.decode(first?.message ?? {}).candle;
    const v = fakeKlineValues('BTCUSDT', closed);
    expect([c.tsOpen, c.open, c.close, c.marketId, c.origin]).toEqual([
      closed,
      Number(v.o),
      Number(v.c),
      3,
      'ws',
    ]);

    const received = await series(registry, 'feed_candles_received_total', ['source', 'timeframe']);
    expect(received.get('source=binance,timeframe=1m')).toBeGreaterThanOrEqual(1);
    expect(received.get('source=simulated,timeframe=1m')).toBeGreaterThanOrEqual(3);
    const ticks = await series(registry, 'feed_ticks_received_total', ['source']);
    expect(ticks.get('source=binance')).toBeGreaterThanOrEqual(1);
    expect(ticks.get('source=simulated')).toBeGreaterThan(0);
    const state = await series(registry, 'feed_state', ['source', 'state']);
    expect(state.get('source=binance,state=STREAM')).toBe(1);
    expect(state.get('source=simulated,state=STREAM')).toBe(1);
    const inst = await series(registry, 'feed_instruments', ['source', 'state']);
    expect(inst.get('source=binance,state=ok')).toBe(1);

    await rt.close();
    // close() stopped every source: the binance socket is gone and a last status of each was written.
    await waitFor(() => fake.openConnections.length === 0, 5000, 'the binance socket closed');
  });
});
