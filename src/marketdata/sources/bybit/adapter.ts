/**
 * The Bybit v5 venue adapter: public spot and linear (USDT perpetual) streams, `kline.1.<SYMBOL>` with
 * `confirm` for candles and `orderbook.1.<SYMBOL>` for bid/ask, the JSON `{"op":"ping"}` heartbeat, REST
 * klines and the instrument list. Everything else is the kit's. docs/venues/bybit.md cites Bybit's
 * documentation for every URL, format and limit below.
 */
import { ConfigError } from '../../../util/errors.js';
import type { SocketPlan, VenueAdapter, VenueInstrument, VenueLimits } from '../../kit/venue.js';
import { BYBIT_SYMBOL_RE, MINUTE_MS, parseBybitMessage, symbolOfTopic, topicsOf } from './messages.js';
import type { BybitUrls } from './options.js';
import {
  instrumentsUrl,
  KLINE_PAGE_LIMIT,
  klineUrl,
  parseInstrumentsReply,
  parseKlineReply,
  type BybitCategory,
} from './rest.js';

export type BybitMarket = BybitCategory;
export const BYBIT_MARKETS: readonly BybitMarket[] = ['spot', 'linear'];

export interface BybitInstrument extends VenueInstrument {
  readonly market: BybitMarket;
}

/**
 * Args of one subscribe request. Spot takes at most 10; linear has no documented cap, and the same 10
 * keeps a refused request small.
 */
export const ARGS_PER_SUBSCRIBE = 10;
/**
 * Topics per connection. Bybit caps a public connection's args at 21,000 characters; 200 topics of the
 * longest symbols we accept (`orderbook.1.` + 40) stay near 11,000.
 */
export const TOPICS_PER_CONNECTION = 200;

/**
 * Bybit's documented limits, kept with a margin: Bybit advises against running an application at their
 * edge, in case abnormal network activity breaks them.
 */
export const BYBIT_LIMITS: VenueLimits = {
  // HTTP IP limit: 600 requests in any 5 s over every endpoint of api.bybit.com; 500 kept.
  rest: [{ count: 500, windowMs: 5_000 }],
  // WebSocket IP limit: at most 500 connections opened in 5 minutes; 400 kept.
  connections: { count: 400, windowMs: 300_000 },
  // Bybit documents no subscribe rate; 20 per second lets a full connection (20 requests) subscribe at once.
  subscribes: { count: 20, windowMs: 1_000 },
  topicsPerConnection: TOPICS_PER_CONNECTION,
};

const MARKET_PATH: Readonly<Record<BybitMarket, string>> = {
  spot: '/v5/public/spot',
  linear: '/v5/public/linear',
};

function isMarket(m: string): m is BybitMarket {
  return (BYBIT_MARKETS as readonly string[]).includes(m);
}

/**
 * Bybit's rules for a key the kit has checked (`parseVenueInstrument`: its form, venue and market type):
 * the symbol is Bybit's, upper case.
 */
function parseInstrument(key: string, where: string, marketId: number): BybitInstrument {
  const [, market = '', symbol = ''] = key.split(':');
  if (!isMarket(market)) throw new ConfigError(where, `${key}: market type must be "spot" or "linear"`);
  if (!BYBIT_SYMBOL_RE.test(symbol)) {
    throw new ConfigError(where, `${key}: symbol must be Bybit's, upper case (${BYBIT_SYMBOL_RE.source})`);
  }
  return { spec: { instrumentKey: key, symbol, marketId }, market, symbol };
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The subscribe request `n` of a socket: `req_id` is its index, so a refusal can be traced to it. */
function subscribeFrame(n: number, instruments: readonly BybitInstrument[]): string {
  return JSON.stringify({
    req_id: String(n),
    op: 'subscribe',
    args: instruments.flatMap((i) => topicsOf(i.symbol)),
  });
}

function sockets(instruments: readonly BybitInstrument[], urls: BybitUrls): SocketPlan<BybitInstrument>[] {
  const plans: SocketPlan<BybitInstrument>[] = [];
  for (const market of BYBIT_MARKETS) {
    const mine = instruments.filter((i) => i.market === market);
    const perSocket = chunk(mine, TOPICS_PER_CONNECTION / 2);
    perSocket.forEach((group, n) => {
      plans.push({
        label: n === 0 ? market : `${market}#${n + 1}`,
        url: `${urls.ws}${MARKET_PATH[market]}`,
        subscribe: chunk(group, ARGS_PER_SUBSCRIBE / 2).map((c, i) => subscribeFrame(i, c)),
        instruments: group,
        carriesCandles: true,
        carriesQuotes: true,
      });
    });
  }
  return plans;
}

/** The symbols of the subscribe request with this `req_id` on `socket`. */
function subscribeSymbols(socket: SocketPlan<BybitInstrument>, reqId: string): string[] {
  if (!/^\d{1,4}$/.test(reqId)) return [];
  const frame = socket.subscribe[Number(reqId)];
  if (frame === undefined) return [];
  const args = (JSON.parse(frame) as { args: string[] }).args;
  return [...new Set(args.map(symbolOfTopic).filter((s): s is string => s !== null))];
}

export const bybitAdapter: VenueAdapter<BybitInstrument, BybitUrls> = {
  venue: 'bybit',
  markets: BYBIT_MARKETS,
  limits: BYBIT_LIMITS,
  // Bybit recommends a ping every 20 s; without ping or data it cuts a connection after 10 minutes.
  heartbeat: { kind: 'text', message: '{"op":"ping"}', intervalMs: 20_000 },
  // Bybit's public streams close without a notice; Bybit asks for a reconnect as soon as possible.
  serverCloseIsNotice: true,
  parseInstrument,
  sockets,
  parseMessage: (text, socket) => parseBybitMessage(text, (reqId) => subscribeSymbols(socket, reqId)),
  history: {
    pageMinutes: KLINE_PAGE_LIMIT,
    request(instrument, from, toExclusive, urls) {
      const minutes = Math.max(1, Math.min(KLINE_PAGE_LIMIT, Math.ceil((toExclusive - from) / MINUTE_MS)));
      const url = klineUrl(urls.rest, {
        category: instrument.market,
        symbol: instrument.symbol,
        start: from,
        end: toExclusive - 1,
        limit: minutes,
      });
      return { url, weight: 1 };
    },
    parse: parseKlineReply,
  },
  symbols: {
    request(market, urls) {
      return { url: instrumentsUrl(urls.rest, isMarket(market) ? market : 'spot'), weight: 1 };
    },
    parse: parseInstrumentsReply,
  },
};
