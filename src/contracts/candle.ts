/**
 * Normalized, readonly market data types. Sources turn exchange messages into these; everything after
 * the source (bars, snapshots, publishing, history, strategies) works only with them.
 */
import type { Timeframe } from './catalog.js';

export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = { '1m': 60_000, '5m': 300_000 };

/** Where a candle came from: `ws` live socket, `rest` history fill, `sim` simulated, `replay` a file. */
export type CandleOrigin = 'ws' | 'rest' | 'sim' | 'replay';

/** A closed OHLCV bar. Times are epoch milliseconds (UTC); `tsClose = tsOpen + interval`. */
export interface Candle {
  readonly instrumentKey: string;
  readonly symbol: string;
  /** Numeric market id of the contract (the contract's `market_id`); 0 when the source has none. */
  readonly marketId: number;
  readonly timeframe: Timeframe;
  readonly tsOpen: number;
  readonly tsClose: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volumeBase: number;
  /** Null when the source does not know it (published as an empty string). */
  readonly volumeQuote: number | null;
  readonly origin: CandleOrigin;
}

/** The latest top of book of one instrument. `tsMs`: when the exchange says it happened (or receipt time). */
export interface Tick {
  readonly instrumentKey: string;
  readonly symbol: string;
  readonly bid: number;
  readonly ask: number;
  readonly tsMs: number;
}
