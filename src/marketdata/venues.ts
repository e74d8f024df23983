/**
 * The venue registry: for each venue an instrument key may name (`MARKET_VENUES` of the config), its
 * adapter and its URLs from the validated `market_data.sources.<venue>`. The feed builds one kit source
 * per venue present from it (`sourcePlan` in config/market-data.ts); `marketbus history backfill` takes
 * the same adapter and URLs for the venue's REST history. Adding a venue: ARCHITECTURE.md.
 */
import { splitInstrumentKey } from '../contracts/catalog.js';
import { InvalidKeyError } from '../util/errors.js';
import {
  MARKET_VENUES,
  type MarketDataConfig,
  type MarketVenue,
  type PlannedInstrument,
} from '../config/market-data.js';
import type { Logger } from '../util/log.js';
import type { KitSourceOptions } from './kit/options.js';
import { createVenueSource } from './kit/source.js';
import type { VenueAdapter, VenueInstrument } from './kit/venue.js';
import { binanceAdapter } from './sources/binance/adapter.js';
import { resolveBinanceUrls } from './sources/binance/options.js';
import { bybitAdapter } from './sources/bybit/adapter.js';
import { resolveBybitUrls } from './sources/bybit/options.js';
import { okxAdapter } from './sources/okx/adapter.js';
import { resolveOkxUrls } from './sources/okx/options.js';
import type { MarketSource } from './types.js';

/**
 * The options every venue's source takes (the kit's: instruments, market ids, the history-call limit,
 * timings, clock, logger); the registry adds the venue's URLs.
 */
export type VenueSourceOptions = KitSourceOptions;

/** Source options beyond the config, for every venue source alike (tests, benches: clock, timings). */
export type VenueSourceTuning = Partial<Omit<VenueSourceOptions, 'instruments' | 'marketIds'>>;

/** Something done with a venue's adapter and its resolved URLs, kept paired by their types. */
export type WithAdapter<R> = <I extends VenueInstrument, U>(adapter: VenueAdapter<I, U>, urls: U) => R;

/** What the registry holds of one venue. */
export interface VenueEntry {
  /** Its kit source for these options, on the URLs of `market_data.sources.<venue>`. */
  createSource(md: MarketDataConfig, options: VenueSourceOptions): MarketSource;
  /** Run `use` with its adapter and URLs (backfill from its REST history). */
  withAdapter<R>(md: MarketDataConfig, use: WithAdapter<R>): R;
}

/** A venue's entry from its adapter and how its URLs come from the config. */
function venue<I extends VenueInstrument, U>(
  adapter: VenueAdapter<I, U>,
  urls: (md: MarketDataConfig) => U,
): VenueEntry {
  return {
    createSource: (md, options) => createVenueSource(adapter, urls(md), options),
    withAdapter: (md, use) => use(adapter, urls(md)),
  };
}

export const VENUES: Readonly<Record<MarketVenue, VenueEntry>> = Object.freeze({
  binance: venue(binanceAdapter, (md) =>
    resolveBinanceUrls({
      wsUrl: md.sources.binance.ws_url,
      restUrl: md.sources.binance.rest_url,
      futuresWsUrl: md.sources.binance.futures_ws_url,
      futuresRestUrl: md.sources.binance.futures_rest_url,
    }),
  ),
  bybit: venue(bybitAdapter, (md) =>
    resolveBybitUrls({ wsUrl: md.sources.bybit.ws_url, restUrl: md.sources.bybit.rest_url }),
  ),
  okx: venue(okxAdapter, (md) =>
    resolveOkxUrls({
      wsUrl: md.sources.okx.ws_url,
      businessWsUrl: md.sources.okx.business_ws_url,
      restUrl: md.sources.okx.rest_url,
    }),
  ),
});

/** The venue of an instrument key (its exchange part), for its REST history. */
export function venueFor(instrumentKey: string): VenueEntry {
  const { exchange } = splitInstrumentKey(instrumentKey);
  const name = MARKET_VENUES.find((v) => v === exchange);
  if (!name)
    throw new InvalidKeyError(
      'instrument key',
      instrumentKey,
      `only a venue has REST history: ${MARKET_VENUES.map((v) => `${v}:*`).join(', ')}`,
    );
  return VENUES[name];
}

/** The source options of a venue's planned instruments. */
export function venueSourceOptions(
  md: MarketDataConfig,
  instruments: readonly PlannedInstrument[],
  logger: Logger,
  tuning: VenueSourceTuning = {},
): VenueSourceOptions {
  const marketIds: Record<string, number> = {};
  for (const i of instruments) if (i.marketId !== undefined) marketIds[i.key] = i.marketId;
  return {
    maxHistoryCallsPerMin: md.max_history_calls_per_min,
    logger,
    ...tuning,
    instruments: instruments.map((i) => i.key),
    marketIds,
  };
}
