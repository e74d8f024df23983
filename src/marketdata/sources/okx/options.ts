/**
 * Options of the OKX source: the kit's (`kit/options.ts`) and OKX's URLs, with their defaults. Every
 * option comes from the config section `market_data.sources.okx` (snake_case there, camelCase here); a
 * wrong value is a ConfigError naming that key. docs/venues/okx.md describes the venue.
 */
import { baseUrlOption } from '../../kit/options.js';
import type { KitSourceOptions } from '../../kit/options.js';
import { withDefaults } from '../../../util/defaults.js';
import type { OkxUrls } from './adapter.js';

export interface OkxSourceOptions extends KitSourceOptions {
  /**
   * Public WebSocket (`ws_url`), the full URL: `tickers` (bid/ask) are subscribed there.
   * @defaultValue `wss://ws.okx.com:8443/ws/v5/public`
   */
  readonly wsUrl?: string | undefined;
  /**
   * Business WebSocket (`business_ws_url`), the full URL: `candle1m` is subscribed there (OKX moved the
   * candle channels off the public socket in June 2023).
   * @defaultValue `wss://ws.okx.com:8443/ws/v5/business`
   */
  readonly businessWsUrl?: string | undefined;
  /**
   * REST base (`rest_url`); the source appends `/api/v5/market/candles`,
   * `/api/v5/market/history-candles` and `/api/v5/public/instruments`.
   * @defaultValue `https://www.okx.com`
   */
  readonly restUrl?: string | undefined;
}

/** The defaults of {@link OkxSourceOptions}' own fields (the kit's are `KIT_DEFAULTS`). */
export const OKX_DEFAULTS = Object.freeze({
  wsUrl: 'wss://ws.okx.com:8443/ws/v5/public',
  businessWsUrl: 'wss://ws.okx.com:8443/ws/v5/business',
  restUrl: 'https://www.okx.com',
} satisfies Partial<OkxSourceOptions>);

/** Validate the URL options and fill in their defaults. Throws ConfigError naming the offending key. */
export function resolveOkxUrls(
  options: Pick<OkxSourceOptions, 'wsUrl' | 'businessWsUrl' | 'restUrl'>,
): OkxUrls {
  const o = withDefaults(OKX_DEFAULTS, options);
  const ws = ['ws:', 'wss:'];
  return {
    wsUrl: baseUrlOption('okx', 'wsUrl', o.wsUrl, ws),
    businessWsUrl: baseUrlOption('okx', 'businessWsUrl', o.businessWsUrl, ws),
    restUrl: baseUrlOption('okx', 'restUrl', o.restUrl, ['http:', 'https:']),
  };
}
