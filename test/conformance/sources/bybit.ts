/**
 * The conformance harness of Bybit: the local fake of Bybit's v5 public API (`test/helpers/fake-bybit.ts`)
 * and the source the feed builds for `bybit:spot:<SYMBOL>` / `bybit:linear:<SYMBOL>` keys against it.
 */
import { splitInstrumentKey } from '../../../src/contracts/catalog.js';
import type { CandleValues } from '../../../src/marketdata/kit/venue.js';
import { createBybitSource } from '../../../src/marketdata/sources/bybit/source.js';
import { FakeBybit, type FakeBybitMarket } from '../../helpers/fake-bybit.js';
import type { FakeVenueServer, SourceUnderTest, VenueHarness } from './venue-harness.js';

/** How often the fake updates every open candle, ms: a few per second keeps a healthy socket from looking silent. */
const OPEN_UPDATE_MS = 200;
/**
 * History calls the source may make per minute (config `max_history_calls_per_min`): well inside Bybit's
 * own IP limit of 600 requests per 5 s, which the kit's REST budget keeps and the suite checks.
 */
const HISTORY_CALLS_PER_MIN = 3000;

function marketOf(key: string): { market: FakeBybitMarket; symbol: string } {
  const { marketType, symbol } = splitInstrumentKey(key);
  if (marketType !== 'spot' && marketType !== 'linear') throw new Error(`not a Bybit market: ${key}`);
  return { market: marketType, symbol };
}

/** Resolves when `done()` holds, checking every few ms; rejects after `timeoutMs`. */
async function until(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function server(fake: FakeBybit, now: () => number): FakeVenueServer {
  /** Topics the latest source subscribes (of listed symbols), per market. */
  let expected: { market: FakeBybitMarket; topic: string }[] = [];
  const subscribedEverywhere = (): boolean =>
    expected.every(({ market, topic }) =>
      fake.openConnections.some((c) => c.market === market && c.topics.has(topic)),
    );
  return {
    settings: { ws_url: fake.wsUrl, rest_url: fake.restUrl },
    limits: {
      restWeight: 600,
      restWindowMs: 5_000,
      connections: 500,
      connectionsWindowMs: 300_000,
      // Bybit documents no subscribe rate; this is the adapter's own cap (docs/venues/bybit.md).
      subscribes: 20,
      subscribesWindowMs: 1_000,
    },
    createSource(keys, timings): SourceUnderTest {
      expected = [];
      for (const key of keys) {
        const { market, symbol } = marketOf(key);
        fake.list(market, symbol);
        if (!fake.isListed(market, symbol)) continue;
        for (const topic of [`kline.1.${symbol}`, `orderbook.1.${symbol}`]) expected.push({ market, topic });
      }
      return createBybitSource({
        instruments: keys,
        wsUrl: fake.wsUrl,
        restUrl: fake.restUrl,
        silenceTimeoutMs: timings.silenceTimeoutMs,
        lateGraceMs: timings.lateGraceMs,
        gapCheckIntervalMs: timings.gapCheckIntervalMs,
        reconnectBaseMs: timings.reconnectBaseMs,
        reconnectMaxMs: timings.reconnectMaxMs,
        since: timings.since,
        maxHistoryCallsPerMin: HISTORY_CALLS_PER_MIN,
        now,
      });
    },
    canonical(key, openTime): CandleValues | null {
      const { market, symbol } = marketOf(key);
      if (!fake.isListed(market, symbol)) return null;
      const v = fake.candle(market, symbol, openTime);
      return {
        openTime,
        open: Number(v.open),
        high: Number(v.high),
        low: Number(v.low),
        close: Number(v.close),
        volumeBase: Number(v.volume),
        volumeQuote: Number(v.turnover),
      };
    },
    zeroTrade(key, openTime) {
      const { market, symbol } = marketOf(key);
      fake.zeroTrades.add(`${market}:${symbol}:${openTime}`);
    },
    pushClose(key, openTime) {
      const { market, symbol } = marketOf(key);
      return fake.pushKline(market, symbol, openTime, true);
    },
    pushOpen(key, openTime) {
      const { market, symbol } = marketOf(key);
      return fake.pushKline(market, symbol, openTime, false);
    },
    pushQuote(key, bid, ask) {
      const { market, symbol } = marketOf(key);
      return fake.pushBook(market, symbol, bid, ask);
    },
    dropAll: () => fake.dropAll(),
    serverClose: () => fake.serverClose(),
    goSilent: () => fake.goSilent(),
    speak: () => fake.speak(),
    rateLimitNext: (retryAfterMs) => fake.rateLimitNext(retryAfterMs),
    unknownSymbols: fake.unknownSymbols,
    get restCalls() {
      return fake.restRequests.map((r) => ({
        at: r.at,
        path: r.path,
        weight: 1,
        status: r.status,
        rateLimited: r.rateLimited,
      }));
    },
    get connectionTimes() {
      return fake.connectionTimes;
    },
    get subscribeTimes() {
      return new Map(fake.connections.map((c) => [c.id, c.subscribeTimes]));
    },
    get openSockets() {
      return fake.openConnections.length;
    },
    async waitForSockets(n, timeoutMs = 10_000) {
      await until(
        () => fake.openConnections.filter((c) => c.subscribed > 0).length >= n && subscribedEverywhere(),
        timeoutMs,
        () => `${n} subscribed sockets (have ${fake.openConnections.filter((c) => c.subscribed > 0).length})`,
      );
    },
    close: () => fake.close(),
  };
}

export const bybit: VenueHarness = {
  venue: 'bybit',
  capabilities: { candles: 'closed-flag', serverNotice: true, symbolList: true, marketHours: false },
  keys: ['bybit:spot:BTCUSDT', 'bybit:linear:BTCUSDT'],
  manyKeys(n) {
    return Array.from({ length: n }, (_, i) => `bybit:spot:C${String(i).padStart(4, '0')}USDT`);
  },
  async start(now) {
    const fake = await FakeBybit.start({ now, klinePushMs: OPEN_UPDATE_MS });
    return server(fake, now);
  },
};
