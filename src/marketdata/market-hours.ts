/**
 * Market hours. Pure functions of an instrument key and an instant; no clock, no I/O.
 *
 * The rule (UTC, no DST, no holidays):
 * - FX (`<exchange>:fx:<SYMBOL>`, e.g. `sim:fx:XAUUSD`, `fxcm:fx:EURUSD`): open all week except the weekend
 *   break, closed from Friday 22:00:00.000 UTC (inclusive) to Sunday 22:00:00.000 UTC (exclusive).
 *   Real FX follows New York 17:00, which is 21:00 UTC in northern summer; marketbus keeps the fixed
 *   22:00 UTC of the seed-003 feed so that simulated and replayed weekends line up the same way all year.
 * - Everything else (spot, crypto, futures): always open.
 */
import { splitInstrumentKey } from '../contracts/catalog.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const WEEK_MS = 7 * DAY_MS;
/** 1970-01-04T00:00:00Z, the first Sunday after the epoch (the epoch was a Thursday). */
const FIRST_SUNDAY_MS = 3 * DAY_MS;
/** Offsets within a week that starts on Sunday 00:00 UTC. */
const FX_OPEN_OFFSET_MS = 22 * HOUR_MS; // Sunday 22:00
const FX_CLOSE_OFFSET_MS = 5 * DAY_MS + 22 * HOUR_MS; // Friday 22:00

/** Which hours an instrument follows. */
export type MarketHoursKind = 'always' | 'fx';

export function marketHoursKind(instrumentKey: string): MarketHoursKind {
  return splitInstrumentKey(instrumentKey).marketType === 'fx' ? 'fx' : 'always';
}

/** Start of the (Sunday 00:00 UTC) week that holds `epochMs`, and the offset of `epochMs` in it. */
function weekOf(epochMs: number): { start: number; offset: number } {
  const offset = (((epochMs - FIRST_SUNDAY_MS) % WEEK_MS) + WEEK_MS) % WEEK_MS;
  return { start: epochMs - offset, offset };
}

/** Whether the market of `instrumentKey` is open at `epochMs` (epoch milliseconds, UTC). */
export function isMarketOpen(instrumentKey: string, epochMs: number): boolean {
  if (marketHoursKind(instrumentKey) === 'always') return true;
  const { offset } = weekOf(epochMs);
  return offset >= FX_OPEN_OFFSET_MS && offset < FX_CLOSE_OFFSET_MS;
}

/**
 * The first instant after `epochMs` at which `isMarketOpen` changes (epoch ms), or null for an
 * instrument that is always open. At the returned instant the new state already holds.
 */
export function nextChange(instrumentKey: string, epochMs: number): number | null {
  if (marketHoursKind(instrumentKey) === 'always') return null;
  const { start, offset } = weekOf(epochMs);
  if (offset < FX_OPEN_OFFSET_MS) return start + FX_OPEN_OFFSET_MS;
  if (offset < FX_CLOSE_OFFSET_MS) return start + FX_CLOSE_OFFSET_MS;
  return start + WEEK_MS + FX_OPEN_OFFSET_MS;
}
