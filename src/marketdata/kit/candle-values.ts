/**
 * A venue's candle numbers, checked, and turned into the normalized Candle and Tick of
 * `contracts/candle.ts`. Every adapter checks what it parsed with `candleValuesProblem` (and its own
 * venue rules, e.g. Binance's close time), so the kit only ever sees candles that make sense.
 */
import type { Candle, CandleOrigin, Tick } from '../../contracts/candle.js';
import { TIMEFRAME_MS } from '../../contracts/candle.js';
import type { CandleValues, VenueInstrument } from './venue.js';

export const MINUTE_MS = 60_000;

/**
 * Rules a 1m candle must satisfy whatever the venue: a minute-aligned open, prices above zero, high/low
 * enclosing open/close, volumes not negative. Returns the problem or null.
 */
export function candleValuesProblem(v: CandleValues): string | null {
  if (!Number.isSafeInteger(v.openTime) || v.openTime % MINUTE_MS !== 0) {
    return `open time ${v.openTime} is not at a minute boundary`;
  }
  if (![v.open, v.high, v.low, v.close].every((p) => Number.isFinite(p) && p > 0)) {
    return 'prices must be above zero';
  }
  if (v.high < Math.max(v.open, v.close, v.low) || v.low > Math.min(v.open, v.close)) {
    return 'high/low do not enclose open/close';
  }
  if (!(v.volumeBase >= 0) || !(v.volumeQuote === null || v.volumeQuote >= 0)) return 'negative volume';
  return null;
}

/** A closed 1m candle; `tsClose` is open + 60 s. */
export function toCandle(instrument: VenueInstrument, v: CandleValues, origin: CandleOrigin): Candle {
  return {
    instrumentKey: instrument.spec.instrumentKey,
    symbol: instrument.spec.symbol,
    marketId: instrument.spec.marketId,
    timeframe: '1m',
    tsOpen: v.openTime,
    tsClose: v.openTime + TIMEFRAME_MS['1m'],
    open: v.open,
    high: v.high,
    low: v.low,
    close: v.close,
    volumeBase: v.volumeBase,
    volumeQuote: v.volumeQuote,
    origin,
  };
}

/** Best bid and ask; stamped with the venue's time when it gives one, else with `receivedAt`. */
export function toTick(
  instrument: VenueInstrument,
  bid: number,
  ask: number,
  exchangeTsMs: number | null,
  receivedAt: number,
): Tick {
  return {
    instrumentKey: instrument.spec.instrumentKey,
    symbol: instrument.spec.symbol,
    bid,
    ask,
    tsMs: exchangeTsMs ?? receivedAt,
  };
}
