/**
 * The Bybit market source: the kit's venue source (`createVenueSource`) over the Bybit adapter, with
 * the URLs of `market_data.sources.bybit`. See docs/venues/bybit.md.
 */
import { createVenueSource, type KitSource } from '../../kit/source.js';
import { bybitAdapter } from './adapter.js';
import { resolveBybitUrls, type BybitSourceOptions } from './options.js';

export type { BybitSourceOptions } from './options.js';

/** A source serving `bybit:spot:<SYMBOL>` and `bybit:linear:<SYMBOL>` keys. Throws ConfigError for bad options. */
export function createBybitSource(options: BybitSourceOptions): KitSource {
  const { wsUrl, restUrl, ...kit } = options;
  return createVenueSource(bybitAdapter, resolveBybitUrls({ wsUrl, restUrl }), kit);
}
