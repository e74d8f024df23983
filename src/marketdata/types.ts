/**
 * What a market data source is and what it reports. The candles and ticks it carries are the
 * normalized types of `contracts/candle.ts`.
 */
import type { Candle, Tick } from '../contracts/candle.js';

/** Connection state of a source (the feed states of docs/contracts.md §8). */
export type FeedState = 'STREAM' | 'IDLE' | 'DISCONNECTED' | 'RECOVERING';

/** Something a source reports besides data. */
export type SourceNotice =
  /** The connection state changed (e.g. socket closed, reconnected). */
  | { readonly kind: 'state'; readonly state: FeedState; readonly reason: string }
  /** A message could not be turned into a candle or tick; it was dropped and counted. */
  | { readonly kind: 'invalid'; readonly reason: string; readonly raw: string }
  /** History calls are being throttled (config `max_history_calls_per_min`) or backing off. */
  | { readonly kind: 'throttle'; readonly throttled: boolean; readonly backoffMs: number }
  /**
   * The market of an instrument opened or closed (FX hours, from the broker's trading hours when it
   * gives them). `nextChangeMs`: when it opens again (closed) or closes (open), epoch ms; null or absent
   * when unknown. The status shows `next_open_seconds` from it.
   */
  | {
      readonly kind: 'market';
      readonly instrumentKey: string;
      readonly open: boolean;
      readonly nextChangeMs?: number | null | undefined;
    }
  /**
   * The last error the source met and recovered from or is backing off after (a failed REST call, a
   * refused connection, a venue error message); the status shows it as `last_error` with its time.
   */
  | { readonly kind: 'error'; readonly reason: string }
  /**
   * The venue does not list an instrument (at start, or it refused the subscription): it is not served,
   * the others go on. `configKey` names its entry, e.g. `market_data.instruments[2]`.
   */
  | {
      readonly kind: 'rejected';
      readonly instrumentKey: string;
      readonly configKey: string;
      readonly reason: string;
    };

export type SourceEvent =
  | { readonly kind: 'candle'; readonly candle: Candle }
  | { readonly kind: 'tick'; readonly tick: Tick }
  /**
   * A known-empty minute: the venue had no trade in it, and the source knows (trade-built bars with the
   * socket up for the whole minute, or the venue's REST says so). Not a gap: the feed records it in the
   * history store's gap ledger, nothing is filled or published, subscribers skip it without waiting.
   * Yielded in order with the instrument's candles.
   */
  | { readonly kind: 'empty'; readonly instrumentKey: string; readonly openTime: number }
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
