/**
 * OKX instrument keys: `okx:spot:<instId>` (`BTC-USDT`) and `okx:swap:<instId>` (perpetual swaps,
 * `BTC-USDT-SWAP`, `BTC-USD-SWAP`, `BTC-USD_UM-SWAP`). The key's market must match the instId's form,
 * so a swap is never subscribed as spot (docs/venues/okx.md).
 */
import { splitInstrumentKey, validateInstrumentKey } from '../../../contracts/catalog.js';
import { ConfigError } from '../../../util/errors.js';
import type { VenueInstrument } from '../../kit/venue.js';

export type OkxMarket = 'spot' | 'swap';

export const OKX_MARKETS: readonly OkxMarket[] = ['spot', 'swap'];

/** OKX's `instType` of a market (REST `public/instruments`, ticker `instType`): `SPOT`, `SWAP`. */
export function instType(market: string): string {
  return market.toUpperCase();
}

export interface OkxInstrument extends VenueInstrument {
  readonly market: OkxMarket;
  /** The instId, as in the key. */
  readonly symbol: string;
}

/** `BASE-QUOTE`: a spot pair. */
const SPOT_RE = /^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$/;
/** `BASE-FAMILY-SWAP`: the family may carry `_UM` (USD-margined). */
const SWAP_RE = /^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}(_[A-Z0-9]{1,10})?-SWAP$/;

function formProblem(market: OkxMarket, instId: string): string | null {
  if (market === 'spot') {
    if (SPOT_RE.test(instId)) return null;
    if (SWAP_RE.test(instId)) return `${instId} is a perpetual swap: its key is okx:swap:${instId}`;
    return `spot instIds are BASE-QUOTE (BTC-USDT), got ${instId}`;
  }
  if (SWAP_RE.test(instId)) return null;
  if (SPOT_RE.test(instId)) return `${instId} is a spot pair: swap instIds end in -SWAP (${instId}-SWAP)`;
  return `swap instIds are BASE-QUOTE-SWAP (BTC-USDT-SWAP), got ${instId}`;
}

/** Read an `okx:` key; ConfigError(`where`) for another venue, market or a wrong instId form. */
export function parseOkxInstrument(key: string, where: string, marketId: number): OkxInstrument {
  try {
    validateInstrumentKey(key);
  } catch (err) {
    throw new ConfigError(where, err instanceof Error ? err.message : String(err), { cause: err });
  }
  const { exchange, marketType, symbol } = splitInstrumentKey(key);
  if (exchange !== 'okx') throw new ConfigError(where, `${key}: exchange must be "okx"`);
  if (marketType !== 'spot' && marketType !== 'swap') {
    throw new ConfigError(where, `${key}: market type must be "spot" or "swap" (perpetual swaps)`);
  }
  const problem = formProblem(marketType, symbol);
  if (problem) throw new ConfigError(where, `${key}: ${problem}`);
  return { spec: { instrumentKey: key, symbol, marketId }, market: marketType, symbol };
}
