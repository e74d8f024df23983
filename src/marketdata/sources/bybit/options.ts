/**
 * Options of the Bybit source: the kit's options plus Bybit's two URLs, from the config section
 * `market_data.sources.bybit` (snake_case there, camelCase here). A wrong URL is a ConfigError naming
 * `market_data.sources.bybit.ws_url` or `.rest_url`. The spot and linear sockets are derived from the one
 * `ws_url` (`<ws_url>/v5/public/spot`, `<ws_url>/v5/public/linear`), as Bybit serves both from one host.
 */
import { withDefaults } from '../../../util/defaults.js';
import { baseUrlOption } from '../../kit/options.js';
import type { KitSourceOptions } from '../../kit/source.js';

export interface BybitUrlOptions {
  /**
   * WebSocket base (`ws_url`): scheme, host and optional path prefix; the source appends
   * `/v5/public/spot` and `/v5/public/linear`.
   * @defaultValue `wss://stream.bybit.com`
   */
  readonly wsUrl?: string | undefined;
  /**
   * REST base (`rest_url`); the source appends `/v5/market/kline` and `/v5/market/instruments-info`.
   * @defaultValue `https://api.bybit.com`
   */
  readonly restUrl?: string | undefined;
}

/** The Bybit source's options: the kit's (instruments, timings, budget, clock) and Bybit's URLs. */
export interface BybitSourceOptions extends KitSourceOptions, BybitUrlOptions {}

/** Bybit's URLs, validated, without a trailing slash. */
export interface BybitUrls {
  /** WebSocket base, e.g. `wss://stream.bybit.com`. */
  readonly ws: string;
  /** REST base, e.g. `https://api.bybit.com`. */
  readonly rest: string;
}

/** The defaults of {@link BybitUrlOptions}: Bybit's public mainnet hosts. */
export const BYBIT_URL_DEFAULTS = Object.freeze({
  wsUrl: 'wss://stream.bybit.com',
  restUrl: 'https://api.bybit.com',
} satisfies BybitUrlOptions);

/** Validate Bybit's URL options and fill in the defaults. Throws ConfigError naming the key. */
export function resolveBybitUrls(options: BybitUrlOptions): BybitUrls {
  const o = withDefaults(BYBIT_URL_DEFAULTS, options);
  return {
    ws: baseUrlOption('bybit', 'wsUrl', o.wsUrl, ['ws:', 'wss:']),
    rest: baseUrlOption('bybit', 'restUrl', o.restUrl, ['http:', 'https:']),
  };
}
