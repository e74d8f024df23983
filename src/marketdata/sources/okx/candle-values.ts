/**
 * The rules an OKX candle must satisfy beyond its field types. Stands in for the kit's own check until
 * the kit is merged (then this file goes and `candleValuesProblem` of the kit serves).
 */
import type { CandleValues } from '../../kit/venue.js';

export const MINUTE_MS = 60_000;

/** A minute-aligned open, high/low enclosing open/close, volumes not negative; the problem or null. */
export function candleProblem(v: CandleValues): string | null {
  if (v.openTime % MINUTE_MS !== 0) return `open time ${v.openTime} is not at a minute boundary`;
  if (v.high < Math.max(v.open, v.close, v.low) || v.low > Math.min(v.open, v.close)) {
    return 'high/low do not enclose open/close';
  }
  if (!(v.volumeBase >= 0) || (v.volumeQuote !== null && !(v.volumeQuote >= 0))) return 'negative volume';
  return null;
}
