/**
 * Options of the Bybit source: the kit's options plus Bybit's two URLs, from the config section
 * `market_data.sources.bybit` (snake_case there, camelCase here). A wrong URL is a ConfigError naming
 * `market_data.sources.bybit.ws_url` or `.rest_url`. The spot and linear sockets are derived from the one
 * `ws_url` (`<ws_url>/v5/public/spot`, `<ws_url>/v5/public/linear`), as Bybit serves both from one host.
 */
import { withDefaults } from '../../../util/defaults.js';
import { ConfigError } from '../../../util/errors.js';
import type { KitSourceOptions } from '../../kit/source.js';

export const BYBIT_CONFIG_PREFIX = 'market_data.sources.bybit';

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

function baseUrl(key: string, raw: string, schemes: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(key, `not a URL: ${JSON.stringify(raw)}`);
  }
  if (!schemes.includes(url.protocol)) {
    throw new ConfigError(key, `expected a ${schemes.join(' or ')} URL, got ${JSON.stringify(raw)}`);
  }
  if (url.search || url.hash) throw new ConfigError(key, 'expected a base URL without query or fragment');
  return raw.replace(/\/+$/, '');
}

/** Validate Bybit's URL options and fill in the defaults. Throws ConfigError naming the key. */
export function resolveBybitUrls(options: BybitUrlOptions): BybitUrls {
  const o = withDefaults(BYBIT_URL_DEFAULTS, options);
  return {
    ws: baseUrl(`${BYBIT_CONFIG_PREFIX}.ws_url`, o.wsUrl, ['ws:', 'wss:']),
    rest: baseUrl(`${BYBIT_CONFIG_PREFIX}.rest_url`, o.restUrl, ['http:', 'https:']),
  };
}
