/**
 * The Binance harness of the source conformance suite: two local fakes (`test/helpers/fake-binance.ts`),
 * one per market Binance serves on its own hosts (spot `api.binance.com` / `stream.binance.com`, USD-M
 * futures `fapi.binance.com` / `fstream.binance.com`), behind one `FakeVenueServer`. The source is
 * `createBinanceSource`, as the feed builds it from `market_data.sources.binance`.
 *
 * Limits (docs/venues/binance.md cites Binance's pages): REST weight is the tighter of the two markets'
 * REQUEST_WEIGHT per minute (futures 2,400; spot 6,000), checked over the calls to both fakes together;
 * 300 WebSocket connection attempts per 5 minutes per IP; 5 incoming messages per second per connection
 * (spot; futures allows 10). The streams ride in the URL, so a Binance source sends no subscribe message.
 */
import type { CandleValues } from '../../../src/marketdata/kit/venue.js';
import { createBinanceSource } from '../../../src/marketdata/sources/binance/source.js';
import {
  BINANCE_LIMITS,
  FakeBinance,
  type FakeConnection,
  type FakeMarket,
  type RateLimitTrap,
} from '../../helpers/fake-binance.js';
import type {
  ConformanceTimings,
  FakeVenueServer,
  RestCall,
  SourceUnderTest,
  VenueHarness,
} from './venue-harness.js';

const MARKETS: readonly FakeMarket[] = ['spot', 'futures'];
/** Most keys `manyKeys` gives; the fakes list them all. */
const MANY_MAX = 2000;
/** An open-kline update on every kline stream this often, real ms (Binance pushes one every 1-2 s). */
const UPDATE_EVERY_MS = 100;
/**
 * History calls the source may make per minute: Binance's own budget (6,000 spot weight / 2 per klines
 * call); the suite checks the weight the fakes received against the venue's limit.
 */
const HISTORY_CALLS_PER_MIN = 3000;

function manySymbol(i: number): string {
  return `C${String(i).padStart(4, '0')}USDT`;
}

function parseKey(key: string): { market: FakeMarket; symbol: string } {
  const [venue, market, symbol] = key.split(':');
  if (venue !== 'binance' || (market !== 'spot' && market !== 'futures') || symbol === undefined) {
    throw new Error(`not a binance key the harness knows: ${key}`);
  }
  return { market, symbol };
}

class BinanceServer implements FakeVenueServer {
  readonly unknownSymbols: Set<string>;
  readonly limits = {
    restWeight: Math.min(...MARKETS.map((m) => BINANCE_LIMITS[m].restWeightPerMinute)),
    restWindowMs: 60_000,
    connections: BINANCE_LIMITS.spot.connectionsPer5Min,
    connectionsWindowMs: 300_000,
    subscribes: BINANCE_LIMITS.spot.incomingMessagesPerSecond,
    subscribesWindowMs: 1000,
  };

  constructor(
    private readonly fakes: Readonly<Record<FakeMarket, FakeBinance>>,
    private readonly now: () => number,
    unknownSymbols: Set<string>,
    private readonly trap: RateLimitTrap,
  ) {
    this.unknownSymbols = unknownSymbols;
  }

  get settings(): Readonly<Record<string, string>> {
    return {
      ws_url: this.fakes.spot.wsUrl,
      rest_url: this.fakes.spot.restUrl,
      futures_ws_url: this.fakes.futures.wsUrl,
      futures_rest_url: this.fakes.futures.restUrl,
    };
  }

  createSource(keys: readonly string[], timings: ConformanceTimings): SourceUnderTest {
    return createBinanceSource({
      instruments: keys,
      wsUrl: this.fakes.spot.wsUrl,
      restUrl: this.fakes.spot.restUrl,
      futuresWsUrl: this.fakes.futures.wsUrl,
      futuresRestUrl: this.fakes.futures.restUrl,
      now: this.now,
      maxHistoryCallsPerMin: HISTORY_CALLS_PER_MIN,
      ...timings,
    });
  }

  private fakeOf(key: string): { fake: FakeBinance; symbol: string } {
    const { market, symbol } = parseKey(key);
    return { fake: this.fakes[market], symbol };
  }

  canonical(key: string, openTime: number): CandleValues | null {
    const { fake, symbol } = this.fakeOf(key);
    const v = fake.klineValues(symbol, openTime);
    return {
      openTime,
      open: Number(v.o),
      high: Number(v.h),
      low: Number(v.l),
      close: Number(v.c),
      volumeBase: Number(v.v),
      volumeQuote: Number(v.q),
    };
  }

  zeroTrade(key: string, openTime: number): void {
    const { fake, symbol } = this.fakeOf(key);
    fake.zeroTrade.add(`${symbol}:${openTime}`);
  }

  pushClose(key: string, openTime: number): number {
    const { fake, symbol } = this.fakeOf(key);
    return fake.pushKline(symbol, openTime, true);
  }

  pushOpen(key: string, openTime: number): number {
    const { fake, symbol } = this.fakeOf(key);
    return fake.pushKline(symbol, openTime, false);
  }

  pushQuote(key: string, bid: string, ask: string): number {
    const { fake, symbol } = this.fakeOf(key);
    return fake.pushBookTicker(symbol, bid, ask);
  }

  dropAll(): void {
    for (const m of MARKETS) this.fakes[m].dropAll();
  }

  serverClose(): void {
    for (const m of MARKETS) this.fakes[m].serverShutdown();
  }

  goSilent(): void {
    for (const m of MARKETS) this.fakes[m].goSilent();
  }

  speak(): void {
    for (const m of MARKETS) this.fakes[m].speak();
  }

  rateLimitNext(retryAfterMs: number): void {
    this.trap.retryAfterMs = retryAfterMs;
  }

  get restCalls(): readonly RestCall[] {
    return MARKETS.flatMap((m) => this.fakes[m].restRequests)
      .map((r) => ({ at: r.at, path: r.path, weight: r.weight, status: r.status }))
      .sort((a, b) => a.at - b.at);
  }

  private get connections(): FakeConnection[] {
    return MARKETS.flatMap((m) => this.fakes[m].connections);
  }

  get connectionTimes(): readonly number[] {
    return this.connections.map((c) => c.openedAt).sort((a, b) => a - b);
  }

  get subscribeTimes(): ReadonlyMap<number, readonly number[]> {
    return new Map(this.connections.map((c, i) => [i, c.controlTimes]));
  }

  get openSockets(): number {
    return this.connections.filter((c) => !c.closed).length;
  }

  async waitForSockets(n: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const ready = (): number =>
      this.connections.filter(
        (c) => !c.closed && c.socket.readyState === c.socket.OPEN && c.streams.length > 0,
      ).length;
    while (ready() < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} sockets (have ${ready()})`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    await Promise.all(MARKETS.map((m) => this.fakes[m].close()));
  }
}

export const binance: VenueHarness = {
  venue: 'binance',
  capabilities: { candles: 'closed-flag', serverNotice: true, symbolList: true, marketHours: false },
  keys: ['binance:spot:BTCUSDT', 'binance:futures:BTCUSDT'],
  manyKeys(n: number): readonly string[] {
    if (n > MANY_MAX) throw new Error(`the binance harness lists ${MANY_MAX} symbols at most`);
    return Array.from({ length: n }, (_, i) => `binance:spot:${manySymbol(i)}`);
  },
  async start(now: () => number): Promise<FakeVenueServer> {
    const listed = ['BTCUSDT', 'ETHUSDT', ...Array.from({ length: MANY_MAX }, (_, i) => manySymbol(i))];
    const unknownSymbols = new Set<string>();
    const trap: RateLimitTrap = { retryAfterMs: null };
    const start = (market: FakeMarket): Promise<FakeBinance> =>
      FakeBinance.start({
        market,
        now,
        heartbeatMs: UPDATE_EVERY_MS,
        listed,
        unknownSymbols,
        rateLimitTrap: trap,
      });
    const [spot, futures] = await Promise.all([start('spot'), start('futures')]);
    return new BinanceServer({ spot, futures }, now, unknownSymbols, trap);
  },
};
