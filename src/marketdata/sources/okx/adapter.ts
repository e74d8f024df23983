/**
 * The OKX v5 venue adapter of the source kit: its URLs, message parsing, limits and instId rules
 * (docs/venues/okx.md cites each). Candles (`candle1m`) come on the business socket(s), bid/ask
 * (`tickers`) on the public socket(s); spot and swaps share both.
 */
import type { RestRequest, RestResponse, SocketPlan, VenueAdapter, VenueLimits } from '../../kit/venue.js';
import type { OkxInstrument } from './instruments.js';
import { OKX_MARKETS, parseOkxInstrument } from './instruments.js';
import { CANDLE_CHANNEL, parseOkxMessage, QUOTE_CHANNEL } from './messages.js';
import {
  CANDLE_PAGE_LIMIT,
  CANDLES_PATH,
  candlesUrl,
  instrumentsUrl,
  parseCandlesReply,
  parseInstrumentsReply,
  RATE_WINDOW_MS,
} from './rest.js';

/** Where the adapter connects, resolved from `market_data.sources.okx` (options.ts). */
export interface OkxUrls {
  /** Public socket, full URL (`wss://ws.okx.com:8443/ws/v5/public`): `tickers`. */
  readonly wsUrl: string;
  /** Business socket, full URL (`wss://ws.okx.com:8443/ws/v5/business`): `candle1m`. */
  readonly businessWsUrl: string;
  /** REST base (`https://www.okx.com`), no trailing slash. */
  readonly restUrl: string;
}

/**
 * OKX counts REST per endpoint and IP: `candles` 40 per 2 s, `history-candles` and `public/instruments`
 * 20 per 2 s. The kit keeps one budget, so it is 40 per 2 s with `candles` weighing 1 and the others 2:
 * any mix then stays within every endpoint's own limit.
 */
export const REST_WINDOW = Object.freeze({ count: 40, windowMs: RATE_WINDOW_MS });
const WEIGHT_CANDLES = 1;
const WEIGHT_TWENTY_PER_WINDOW = 2;

/**
 * Channels per connection. OKX documents no number for public channels, only that one subscribe request
 * stays under 64 KB and that a connection past its limit is closed (4008/4009); 100 args are about 5 KB.
 */
export const TOPICS_PER_CONNECTION = 100;

export const OKX_LIMITS: VenueLimits = Object.freeze({
  rest: [REST_WINDOW],
  /** "Connection limit: 3 requests per second (based on IP)". */
  connections: Object.freeze({ count: 3, windowMs: 1_000 }),
  /** "'subscribe'/'unsubscribe'/'login' requests per connection is limited to 480 times per hour". */
  subscribes: Object.freeze({ count: 480, windowMs: 3_600_000 }),
  topicsPerConnection: TOPICS_PER_CONNECTION,
});

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function subscribeMessage(channel: string, instruments: readonly OkxInstrument[]): string {
  return JSON.stringify({ op: 'subscribe', args: instruments.map((i) => ({ channel, instId: i.symbol })) });
}

function plans(
  name: string,
  url: string,
  channel: string,
  instruments: readonly OkxInstrument[],
  candles: boolean,
): SocketPlan<OkxInstrument>[] {
  return chunks(instruments, TOPICS_PER_CONNECTION).map((chunk, i) => ({
    label: i === 0 ? name : `${name}#${i + 1}`,
    url,
    subscribe: [subscribeMessage(channel, chunk)],
    instruments: chunk,
    carriesCandles: candles,
    carriesQuotes: !candles,
  }));
}

export const okxAdapter: VenueAdapter<OkxInstrument, OkxUrls> = Object.freeze({
  venue: 'okx',
  markets: OKX_MARKETS,
  limits: OKX_LIMITS,
  /** OKX cuts a connection after 30 s without data; a text `ping` (answered `pong`) every 20 s keeps it. */
  heartbeat: Object.freeze({ kind: 'text', message: 'ping', intervalMs: 20_000 }),
  parseInstrument: parseOkxInstrument,
  sockets(instruments: readonly OkxInstrument[], urls: OkxUrls): readonly SocketPlan<OkxInstrument>[] {
    return [
      ...plans('business', urls.businessWsUrl, CANDLE_CHANNEL, instruments, true),
      ...plans('public', urls.wsUrl, QUOTE_CHANNEL, instruments, false),
    ];
  },
  parseMessage: parseOkxMessage,
  history: Object.freeze({
    pageMinutes: CANDLE_PAGE_LIMIT,
    request(
      instrument: OkxInstrument,
      from: number,
      toExclusive: number,
      urls: OkxUrls,
      nowMs: number,
    ): RestRequest {
      const url = candlesUrl(urls.restUrl, instrument.symbol, from, toExclusive, nowMs);
      const recent = new URL(url).pathname === CANDLES_PATH;
      return { url, weight: recent ? WEIGHT_CANDLES : WEIGHT_TWENTY_PER_WINDOW };
    },
    parse: (response: RestResponse, instrument: OkxInstrument) =>
      parseCandlesReply(response, instrument.market),
  }),
  symbols: Object.freeze({
    request: (market: string, urls: OkxUrls): RestRequest => ({
      url: instrumentsUrl(urls.restUrl, market),
      weight: WEIGHT_TWENTY_PER_WINDOW,
    }),
    parse: parseInstrumentsReply,
  }),
});
