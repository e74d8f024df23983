/**
 * Normalized, readonly market data types. Sources turn exchange messages into these; everything after
 * the source (bars, snapshots, publishing, history) works only with them.
 */
import type { Timeframe } from '../bus/catalog.js';

export const TIMEFRAME_MS: Readonly<Record<Timeframe, number>> = { '1m': 60_000, '5m': 300_000 };

/** Where a candle came from: `ws` live socket (seed 002), `rest` history fill, `sim` simulated, `replay` a file. */
export type CandleOrigin = 'ws' | 'rest' | 'sim' | 'replay';

/** A closed OHLCV bar. Times are epoch milliseconds (UTC); `tsClose = tsOpen + interval`. */
export interface Candle {
  readonly instrumentKey: string;
  readonly symbol: string;
  /** Numeric market id of the contract (seed 002 `market_id`); 0 when the source has none. */
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

/** Connection state of a source (seed 003's diagnostic states). */
export type FeedState = 'STREAM' | 'IDLE' | 'DISCONNECTED' | 'RECOVERING';

/** Something a source reports besides data. */
export type SourceNotice =
  /** The connection state changed (e.g. socket closed, reconnected). */
  | { readonly kind: 'state'; readonly state: FeedState; readonly reason: string }
  /** A message could not be turned into a candle or tick; it was dropped and counted. */
  | { readonly kind: 'invalid'; readonly reason: string; readonly raw: string }
  /** History calls are being throttled (seed 003 `max_history_calls_per_min`) or backing off. */
  | { readonly kind: 'throttle'; readonly throttled: boolean; readonly backoffMs: number }
  /** The market of an instrument opened or closed (FX hours). */
  | { readonly kind: 'market'; readonly instrumentKey: string; readonly open: boolean };

export type SourceEvent =
  | { readonly kind: 'candle'; readonly candle: Candle }
  | { readonly kind: 'tick'; readonly tick: Tick }
  | SourceNotice;

/** An instrument a source serves. */
export interface InstrumentSpec {
  readonly instrumentKey: string;
  readonly symbol: string;
  readonly marketId: number;
}

/**
 * A market data source: an async iterator of events, ended by the signal. It must never throw for a bad
 * message (report `invalid`) or a lost connection (report `state` and reconnect); it throws only for
 * errors of its own configuration. Back-pressure: a source does not read ahead of its consumer more
 * than its own small bounded buffer.
 */
export interface MarketSource {
  readonly name: string;
  readonly instruments: readonly InstrumentSpec[];
  events(signal: AbortSignal): AsyncIterable<SourceEvent>;
}

/** Split `<exchange>:<market_type>:<SYMBOL>`. The key must already be validated. */
export function splitInstrumentKey(key: string): { exchange: string; marketType: string; symbol: string } {
  const [exchange = '', marketType = '', ...rest] = key.split(':');
  return { exchange, marketType, symbol: rest.join(':') };
}
