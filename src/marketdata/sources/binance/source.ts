/**
 * The Binance market source: the kit's venue source (`kit/source.ts`) on the Binance adapter
 * (`adapter.ts`): closed 1m candles (`<symbol>@kline_1m`, `x=true` only) and top of book
 * (`<symbol>@bookTicker`) from combined-stream WebSockets per market (spot, USD-M futures), with REST
 * klines filling every gap under the history-call limit. See docs/venues/binance.md and the options in
 * `options.ts`.
 */
import { createVenueSource, type KitSource, type KitSourceStats } from '../../kit/source.js';
import { binanceAdapter } from './adapter.js';
import { resolveBinanceUrls, type BinanceSourceOptions } from './options.js';

export type { BinanceSourceOptions } from './options.js';

/** Counters of a source since it was created (queue figures: of the latest `events()` run). */
export type BinanceSourceStats = KitSourceStats;

export interface BinanceSource extends KitSource {
  stats(): BinanceSourceStats;
}

/** Create the source. Throws ConfigError for wrong options; never afterwards. */
export function createBinanceSource(opts: BinanceSourceOptions): BinanceSource {
  const { wsUrl, restUrl, futuresWsUrl, futuresRestUrl, ...kit } = opts;
  const urls = resolveBinanceUrls({ wsUrl, restUrl, futuresWsUrl, futuresRestUrl });
  return createVenueSource(binanceAdapter, urls, kit);
}
