/**
 * The venue registry: for each venue an instrument key may name (`MARKET_VENUES` of the config), how
 * to build its streaming source from the validated `market_data` section. The feed runs one source per
 * venue present (`sourcePlan` in config/market-data.ts); `marketbus history backfill` takes the same
 * venue's settings from here.
 */
import { ConfigError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { MarketDataConfig, MarketVenue, PlannedInstrument } from '../config/market-data.js';
import type { BinanceSourceOptions } from './sources/binance/options.js';
import { createBinanceSource } from './sources/binance/source.js';
import type { MarketSource } from './types.js';

/**
 * The options every venue's source takes (the kit's source options: instruments, market ids, the
 * history-call limit, timings, clock, logger); each venue adds its URLs from `market_data.sources.<venue>`.
 */
export type VenueSourceOptions = Omit<
  BinanceSourceOptions,
  'wsUrl' | 'restUrl' | 'futuresWsUrl' | 'futuresRestUrl'
>;

/** Source options beyond the config, for every venue source alike (tests, benches: clock, timings). */
export type VenueSourceTuning = Partial<Omit<VenueSourceOptions, 'instruments' | 'marketIds'>>;

/** What the registry holds of one venue. */
export interface VenueEntry {
  /** Its source for these options, with its URLs from `market_data.sources.<venue>`. */
  readonly createSource: (md: MarketDataConfig, options: VenueSourceOptions) => MarketSource;
}

/** A venue whose source is not in this build yet: its keys are refused naming the first of them. */
function notBuilt(venue: MarketVenue): VenueEntry['createSource'] {
  return () => {
    throw new ConfigError(`market_data.sources.${venue}`, `the ${venue} source is not in this build`);
  };
}

export const VENUES: Readonly<Record<MarketVenue, VenueEntry>> = Object.freeze({
  binance: {
    createSource: (md, o) => {
      const b = md.sources.binance;
      return createBinanceSource({
        ...o,
        wsUrl: b.ws_url,
        restUrl: b.rest_url,
        futuresWsUrl: b.futures_ws_url,
        futuresRestUrl: b.futures_rest_url,
      });
    },
  },
  // SLOT(h-bybit): createBybitSource({ ...o, wsUrl: md.sources.bybit.ws_url, restUrl: md.sources.bybit.rest_url })
  bybit: { createSource: notBuilt('bybit') },
  // SLOT(h-okx): createOkxSource({ ...o, wsUrl: okx.ws_url, businessWsUrl: okx.business_ws_url, restUrl: okx.rest_url })
  okx: { createSource: notBuilt('okx') },
});

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
