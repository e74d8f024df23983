/**
 * The Binance venue adapter: `binance:spot:<SYMBOL>` and `binance:futures:<SYMBOL>` (USD-M) on
 * combined-stream sockets (`<symbol>@kline_1m` and `<symbol>@bookTicker`, carried in the URL), REST
 * klines for history and exchangeInfo for the symbol lists. Keys, streams, limits and quirks:
 * docs/venues/binance.md.
 */
import { ConfigError } from '../../../util/errors.js';
import type { SocketPlan, VenueAdapter, VenueLimits } from '../../kit/venue.js';
import { binanceVenueMessage } from './messages.js';
import { BINANCE_MARKETS, type BinanceInstrument, type BinanceMarket, type BinanceUrls } from './options.js';
import {
  exchangeInfoRequest,
  klinesRequest,
  KLINES_PAGE_LIMIT,
  parseExchangeInfo,
  parseKlinesReply,
} from './rest.js';

const SYMBOL_RE = /^[A-Z0-9_]{2,40}$/;

/**
 * Binance's documented limits (docs/venues/binance.md, "Limits honoured"):
 * - REST: 6000 request weight per minute per IP on spot, 2400 on USD-M futures; one list serves both
 *   markets (each REST origin has its own budget), so the tighter 2400 applies;
 * - WebSocket: 300 new connections per 5 minutes per IP; 5 incoming messages per second per connection
 *   on spot (10 on futures), so 5; 1024 streams per connection.
 */
export const BINANCE_LIMITS: VenueLimits = Object.freeze({
  rest: Object.freeze([{ count: 2400, windowMs: 60_000 }]),
  connections: { count: 300, windowMs: 300_000 },
  subscribes: { count: 5, windowMs: 1_000 },
  topicsPerConnection: 1024,
});

/** Two streams per instrument: its 1m klines and its book ticker. */
const STREAMS_PER_INSTRUMENT = 2;

/** `market` as a Binance market; the kit checks keys against `markets` before this is asked. */
function marketOf(market: string | undefined, where: string): BinanceMarket {
  const m = BINANCE_MARKETS.find((x) => x === market);
  if (!m)
    throw new ConfigError(where, `market type must be "spot" or "futures" (USD-M), got ${String(market)}`);
  return m;
}

function streamsOf(instruments: readonly BinanceInstrument[]): string[] {
  return instruments.flatMap((i) => [`${i.streamSymbol}@kline_1m`, `${i.streamSymbol}@bookTicker`]);
}

function sockets(
  instruments: readonly BinanceInstrument[],
  urls: BinanceUrls,
): readonly SocketPlan<BinanceInstrument>[] {
  const perSocket = Math.floor(BINANCE_LIMITS.topicsPerConnection / STREAMS_PER_INSTRUMENT);
  const plans: SocketPlan<BinanceInstrument>[] = [];
  for (const market of BINANCE_MARKETS) {
    const mine = instruments.filter((i) => i.market === market);
    for (let at = 0; at < mine.length; at += perSocket) {
      const chunk = mine.slice(at, at + perSocket);
      const n = at / perSocket + 1;
      plans.push({
        label: n === 1 ? market : `${market}#${n}`,
        url: `${urls.ws[market]}/stream?streams=${streamsOf(chunk).join('/')}`,
        subscribe: [],
        instruments: chunk,
        carriesCandles: true,
        carriesQuotes: true,
      });
    }
  }
  return plans;
}

export const binanceAdapter: VenueAdapter<BinanceInstrument, BinanceUrls> = {
  venue: 'binance',
  markets: BINANCE_MARKETS,
  limits: BINANCE_LIMITS,
  // Binance sends ping frames itself and answers ours with pongs.
  heartbeat: { kind: 'frame' },
  parseInstrument: (key, where, marketId) => {
    const [, type, symbol = ''] = key.split(':');
    const market = marketOf(type, where);
    if (!SYMBOL_RE.test(symbol))
      throw new ConfigError(where, `${key}: symbol must match ${SYMBOL_RE.source}`);
    return {
      spec: { instrumentKey: key, symbol, marketId },
      market,
      symbol,
      streamSymbol: symbol.toLowerCase(),
    };
  },
  sockets,
  parseMessage: (text) => binanceVenueMessage(text),
  history: {
    pageMinutes: KLINES_PAGE_LIMIT,
    request: (i, from, toExclusive, urls) =>
      klinesRequest(urls.rest[i.market], i.market, i.symbol, from, toExclusive),
    parse: parseKlinesReply,
  },
  symbols: {
    request: (type, urls) => {
      const market = marketOf(type, 'market_data.instruments');
      return exchangeInfoRequest(urls.rest[market], market);
    },
    parse: parseExchangeInfo,
  },
};
