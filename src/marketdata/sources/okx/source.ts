/**
 * The OKX v5 market source: the kit's venue source (`kit/source.ts`) on the OKX adapter (`adapter.ts`):
 * closed 1m candles (`candle1m` with `confirm` "1" only, business socket) and top of book (`tickers`,
 * public socket) for `okx:spot:<instId>` and `okx:swap:<instId>`, with REST `candles` /
 * `history-candles` filling every gap. See docs/venues/okx.md and the options in `options.ts`.
 */
import { createVenueSource, type KitSource } from '../../kit/source.js';
import { okxAdapter } from './adapter.js';
import { resolveOkxUrls, type OkxSourceOptions } from './options.js';

export type { OkxSourceOptions } from './options.js';

export type OkxSource = KitSource;

/** Create the source. Throws ConfigError for wrong options; never afterwards. */
export function createOkxSource(opts: OkxSourceOptions): OkxSource {
  const { wsUrl, businessWsUrl, restUrl, ...kit } = opts;
  return createVenueSource(okxAdapter, resolveOkxUrls({ wsUrl, businessWsUrl, restUrl }), kit);
}
