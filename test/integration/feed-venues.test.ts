/**
 * One feed, several venues: a config naming sim and binance keys (no `market_data.source`) runs the
 * simulated source and the binance source (against the fake Binance on loopback) in one FeedService,
 * with one `md.status.<source>` each, the candles of both on their streams, and the `source` label on
 * the metrics per venue; an instrument its venue does not list is logged as a config error naming its
 * entry, shown stopped in that venue's status, and the others go on.
 */
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { streams } from '../../src/contracts/catalog.js';
import { candleCodec } from '../../src/contracts/market-data.js';
import { resolveMarketData, startFeed, type FeedRuntime } from '../../src/app/feed.js';
import { silentLogger } from '../../src/util/log.js';
import { FakeBinance, fakeKlineValues, MINUTE as M } from '../helpers/fake-binance.js';
import { FakeBybit } from '../helpers/fake-bybit.js';
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

  it('an instrument its venue does not list: CONFIG_INVALID naming its entry, stopped in its venue status, the rest go on', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    closers.push(() => redis.close());
    const binance = await FakeBinance.start({ now: Date.now });
    closers.push(() => binance.close());
    const bybit = await FakeBybit.start({ now: Date.now });
    closers.push(() => bybit.close());
    const logged: Record<string, unknown>[] = [];
    const log = pino(
      { level: 'info' },
      { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const BIN = 'binance:spot:BTCUSDT';
    const NOPE = 'bybit:spot:NOPEUSDT';
    const BYB = 'bybit:spot:BTCUSDT';
    const md = resolveMarketData(
      {
        instruments: [BIN, NOPE, BYB],
        status_interval_seconds: 1,
        sources: {
          binance: { ws_url: binance.wsUrl, rest_url: binance.restUrl },
          bybit: { ws_url: bybit.wsUrl, rest_url: bybit.restUrl },
        },
      },
      {},
    );
    const rt = await startFeed({ md, redis: redisOptions(server), registry: new Registry(), log });
    closers.push(() => rt.close());
    expect(rt.feed.sourceNames).toEqual(['binance', 'bybit']);

    // The refusal names the entry in the whole config (the bybit source alone counts it [0]).
    await waitFor(() => logged.some((l) => l['code'] === 'CONFIG_INVALID'), 15_000, 'the config error');
    const err = logged.find((l) => l['code'] === 'CONFIG_INVALID');
    expect(err).toMatchObject({
      level: 50,
      key: 'market_data.instruments[1]',
      instrument: NOPE,
      source: 'bybit',
    });
    expect(String(err?.['msg'])).toContain('config market_data.instruments[1]');

    await waitFor(
      () => bybit.openConnections.some((c) => c.topics.has('kline.1.BTCUSDT')),
      15_000,
      'bybit subscribed',
    );
    await binance.waitForConnections(1);
    const closed = Math.floor(Date.now() / M) * M - M;
    bybit.pushBook('spot', 'BTCUSDT', '100.10', '100.20');
    bybit.pushKline('spot', 'BTCUSDT', closed, true);
    binance.pushBookTicker('BTCUSDT', '100.10', '100.20');
    binance.pushKline('BTCUSDT', closed);
    for (const key of [BYB, BIN])
      await waitFor(async () => (await redis.xLen(streams.candles('1m', key))) >= 1, 10_000, `${key} candle`);
    expect(await redis.exists(streams.candles('1m', NOPE))).toBe(0);

    const latest = async (source: string): Promise<Record<string, string>> =>
      (await redis.xRevRange(streams.feedStatus(source), '+', '-', { COUNT: 1 }))[0]?.message ?? {};
    await waitFor(async () => (await latest('bybit'))['state'] === 'STREAM', 10_000, 'bybit STREAM');
    const inst = JSON.parse((await latest('bybit'))['instruments'] ?? '{}') as Record<
      string,
      { state: string; reason: string | null }
    >;
    expect(inst[NOPE]?.state).toBe('stopped');
    expect(inst[NOPE]?.reason).toMatch(/NOPEUSDT/);
    expect(inst[BYB]).toMatchObject({ state: 'ok', reason: null });
    expect(Object.keys(JSON.parse((await latest('binance'))['instruments'] ?? '{}') as object)).toEqual([
      BIN,
    ]);
  });
});
