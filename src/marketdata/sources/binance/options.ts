/**
 * Options of the Binance source: the kit's (`kit/options.ts`) and Binance's URLs, with their defaults.
 * Every option comes from the config section `market_data.sources.binance` (snake_case there, camelCase
 * here); a wrong value is a ConfigError naming that key. docs/venues/binance.md describes the venue.
 */
import { baseUrlOption } from '../../kit/options.js';
import type { KitSourceOptions } from '../../kit/options.js';
import type { VenueInstrument } from '../../kit/venue.js';
import { withDefaults } from '../../../util/defaults.js';

export type { KitSourceOptions } from '../../kit/options.js';

/** `spot` (api.binance.com) or USD-M futures (`futures`, fapi.binance.com): separate sockets and URLs. */
export type BinanceMarket = 'spot' | 'futures';

export const BINANCE_MARKETS: readonly BinanceMarket[] = ['spot', 'futures'];

export interface BinanceSourceOptions extends KitSourceOptions {
  /**
   * Spot WebSocket base (`ws_url`), scheme, host and optional path prefix; the source appends
   * `/stream?streams=...`.
   * @defaultValue `wss://stream.binance.com:9443`
   */
  readonly wsUrl?: string | undefined;
  /**
   * Spot REST base (`rest_url`); the source appends `/api/v3/klines` and `/api/v3/exchangeInfo`.
   * @defaultValue `https://api.binance.com`
   */
  readonly restUrl?: string | undefined;
  /**
   * USD-M futures WebSocket base (`futures_ws_url`).
   * @defaultValue `wss://fstream.binance.com`
   */
  readonly futuresWsUrl?: string | undefined;
  /**
   * USD-M futures REST base (`futures_rest_url`); the source appends `/fapi/v1/klines` and
   * `/fapi/v1/exchangeInfo`.
   * @defaultValue `https://fapi.binance.com`
   */
  readonly futuresRestUrl?: string | undefined;
}

/** The defaults of {@link BinanceSourceOptions}' own fields (the kit's are `KIT_DEFAULTS`). */
export const BINANCE_DEFAULTS = Object.freeze({
  wsUrl: 'wss://stream.binance.com:9443',
  restUrl: 'https://api.binance.com',
  futuresWsUrl: 'wss://fstream.binance.com',
  futuresRestUrl: 'https://fapi.binance.com',
} satisfies Partial<BinanceSourceOptions>);

/** Binance's resolved URLs, per market. */
export interface BinanceUrls {
  readonly ws: Readonly<Record<BinanceMarket, string>>;
  readonly rest: Readonly<Record<BinanceMarket, string>>;
}

export interface BinanceInstrument extends VenueInstrument {
  readonly market: BinanceMarket;
  /** Lower-case symbol used in stream names (`btcusdt`). */
  readonly streamSymbol: string;
}

/** Validate the URL options and fill in their defaults. Throws ConfigError naming the offending key. */
export function resolveBinanceUrls(
  options: Pick<BinanceSourceOptions, 'wsUrl' | 'restUrl' | 'futuresWsUrl' | 'futuresRestUrl'>,
): BinanceUrls {
  const o = withDefaults(BINANCE_DEFAULTS, options);
  const ws = ['ws:', 'wss:'];
  const http = ['http:', 'https:'];
  return {
    ws: {
      spot: baseUrlOption('binance', 'wsUrl', o.wsUrl, ws),
      futures: baseUrlOption('binance', 'futuresWsUrl', o.futuresWsUrl, ws),
    },
    rest: {
      spot: baseUrlOption('binance', 'restUrl', o.restUrl, http),
      futures: baseUrlOption('binance', 'futuresRestUrl', o.futuresRestUrl, http),
    },
  };
}
