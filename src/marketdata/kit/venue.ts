/**
 * What a streaming venue adapter is: its URLs, its message parsing, its limits and its symbol rules,
 * and nothing else. Everything every venue needs (connection lifecycle, heartbeats, the REST budget, the
 * connection budget, the candle sequencer, gap fills, bid/ask ticks, feed state) is the kit's
 * (`createVenueSource` in `source.ts`). ARCHITECTURE.md "Adding a venue" walks through one.
 *
 * Times are epoch milliseconds (UTC). A candle is the minute `[openTime, openTime + 60 s)`.
 */
import type { InstrumentSpec } from '../types.js';

/** An instrument of a venue, as its adapter read it from the instrument key. */
export interface VenueInstrument {
  /** Key, symbol as in the key, market id. */
  readonly spec: InstrumentSpec;
  /** The key's market type, one of the adapter's `markets` (`spot`, `futures`, `linear`, `swap`). */
  readonly market: string;
  /** The venue's own symbol (`BTCUSDT`, `BTC-USDT-SWAP`): how messages and REST name it. */
  readonly symbol: string;
}

/** The numbers of one 1m candle as the venue gives them, already checked (see `candleValuesProblem`). */
export interface CandleValues {
  /** Open time, minute-aligned. */
  readonly openTime: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** Volume in the base asset (for contracts: what the venue calls volume in coins, not contracts). */
  readonly volumeBase: number;
  /** Volume in the quote asset; null when the venue does not give it. */
  readonly volumeQuote: number | null;
}

/** One WebSocket the kit keeps open for the adapter, and what it subscribes on it after each open. */
export interface SocketPlan<I extends VenueInstrument = VenueInstrument> {
  /** For reasons, logs and the state tracker; unique within the source, e.g. `spot`, `business#2`. */
  readonly label: string;
  /** Full URL to connect to (for Binance it carries the streams). */
  readonly url: string;
  /**
   * Text frames sent after every open, in order (the resubscribe). Each is one subscribe message for the
   * connection budget (`VenueLimits.subscribes`). Empty when the URL carries the subscription.
   */
  readonly subscribe: readonly string[];
  /** Instruments whose messages come on this socket; messages name them by `VenueInstrument.symbol`. */
  readonly instruments: readonly I[];
  /** Whether closed candles come on this socket: after its (re)connect the kit fills their gaps. */
  readonly carriesCandles: boolean;
  /** Whether top of book comes on this socket. */
  readonly carriesQuotes: boolean;
}

/** How the kit keeps a socket's liveness: protocol pings, or the venue's text ping. */
export type Heartbeat =
  /** WebSocket ping frames, answered by pong frames (Binance). Sent every third of the silence timeout. */
  | { readonly kind: 'frame' }
  /**
   * A text frame (`ping`, `{"op":"ping"}`) sent every `intervalMs` (every third of the silence timeout
   * when that is shorter); `parseMessage` reports the venue's answer as `{ type: 'pong' }`. An
   * unanswered ping for the silence timeout drops the socket.
   */
  | { readonly kind: 'text'; readonly message: string; readonly intervalMs: number };

/** One parsed text frame. Parsing never throws. */
export type VenueMessage =
  /** A candle update of `symbol` on this socket; `closed` is the venue's closed flag. */
  | {
      readonly type: 'candle';
      readonly symbol: string;
      readonly closed: boolean;
      readonly values: CandleValues;
    }
  /** Best bid and ask of `symbol`; `exchangeTsMs` when the venue stamps it. */
  | {
      readonly type: 'quote';
      readonly symbol: string;
      readonly bid: number;
      readonly ask: number;
      readonly exchangeTsMs: number | null;
    }
  /** The answer to the heartbeat. */
  | { readonly type: 'pong' }
  /** A control reply that needs nothing (subscribe acknowledged, a message we do not use). */
  | { readonly type: 'ack' }
  /** The venue will close this socket (shutdown, maintenance, connection expiry): reconnect now. */
  | { readonly type: 'reconnect'; readonly reason: string }
  /** The venue refused the subscription of `symbol` (it does not exist there). */
  | { readonly type: 'rejected'; readonly symbol: string; readonly reason: string }
  | { readonly type: 'invalid'; readonly reason: string };

/** An HTTP reply as the kit read it, for the adapter to interpret. */
export interface RestResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** When it arrived, epoch ms (for `Retry-After` dates and reset times). */
  readonly receivedAt: number;
}

/** A row of a REST candle page. */
export type RestRow =
  | {
      readonly ok: true;
      readonly values: CandleValues;
      /** The venue's own closed flag when its REST gives one (OKX `confirm`); false rows are never used. */
      readonly closed?: boolean | undefined;
    }
  | { readonly ok: false; readonly reason: string; readonly raw: string };

/** What a REST reply means. `classifyHttp` (rest-call.ts) gives the part common to every venue. */
export type RestOutcome<T> =
  | { readonly kind: 'ok'; readonly value: T }
  /** The venue's rate limit (HTTP 429/418 or its own error code): wait `retryAfterMs` when it says. */
  | { readonly kind: 'rate-limited'; readonly retryAfterMs: number | null; readonly reason: string }
  /** Network trouble, timeout, a 5xx or a "busy" code: the same call may succeed later. */
  | { readonly kind: 'retryable'; readonly reason: string }
  /** Repeating the call will not help. */
  | { readonly kind: 'failed'; readonly reason: string; readonly raw: string };

/** A REST call the adapter wants made, and what it costs against the venue's budget. */
export interface RestRequest {
  readonly url: string;
  /** Its weight in the venue's REST budget (1 for venues that count calls). */
  readonly weight: number;
}

/** A time window of a limit: at most `count` in any `windowMs`. */
export interface RateWindow {
  readonly count: number;
  readonly windowMs: number;
}

/** The venue's documented limits, which the kit keeps (docs/venues/<venue>.md cites each). */
export interface VenueLimits {
  /** REST weight per window, every window at once, shared by every caller in the process. */
  readonly rest: readonly RateWindow[];
  /** New WebSocket connections per window (per IP), over all sockets of the process. */
  readonly connections: RateWindow;
  /** Subscribe messages per window on one connection. */
  readonly subscribes: RateWindow;
  /** Most topics (streams, args) on one connection; the adapter plans more sockets beyond it. */
  readonly topicsPerConnection: number;
}

/** The candle history of a venue over REST. */
export interface VenueHistory<I extends VenueInstrument, U> {
  /** Most minutes one call returns. */
  readonly pageMinutes: number;
  /**
   * The call for the candles with open times in `[from, toExclusive)`, at most `pageMinutes` of them.
   * `nowMs` lets a venue choose its recent or its archive endpoint (OKX).
   */
  request(instrument: I, from: number, toExclusive: number, urls: U, nowMs: number): RestRequest;
  /**
   * Read the reply to `request(instrument, ...)`; rows in any order (the kit sorts, deduplicates and keeps
   * the range and closed ones). `instrument` is the one asked for: what a column means may depend on its
   * market (OKX's `vol` is base currency on spot, contracts on swaps).
   */
  parse(response: RestResponse, instrument: I): RestOutcome<readonly RestRow[]>;
}

/** The venue's list of symbols, to refuse unknown ones at start with a config error naming them. */
export interface VenueSymbols<U> {
  /** The call that lists the symbols of `market` (one per market at start). */
  request(market: string, urls: U): RestRequest;
  parse(response: RestResponse): RestOutcome<ReadonlySet<string>>;
}

/**
 * A venue adapter. `U` is its resolved URLs (from `market_data.sources.<venue>`, validated by its
 * options module).
 * Must not keep state: one adapter object serves every source and backfill of the process.
 */
export interface VenueAdapter<I extends VenueInstrument = VenueInstrument, U = unknown> {
  /** The key prefix and the `md.status.<venue>` name: `binance`, `bybit`, `okx`. */
  readonly venue: string;
  /** Market types its keys may name, e.g. `['spot', 'linear']`. */
  readonly markets: readonly string[];
  readonly limits: VenueLimits;
  readonly heartbeat: Heartbeat;
  /**
   * Reconnect proactively after this long connected (before the venue's own cut), ms.
   * @defaultValue the kit's 23 h when the venue documents no cut
   */
  readonly rotateAfterMs?: number | undefined;
  /**
   * Whether a close frame sent by the server is the venue's server-initiated close, because the venue
   * sends no notice before it (Bybit: "reconnect as soon as possible if disconnected"): the kit then
   * reconnects at once, without backoff, as after a `reconnect` message.
   * @defaultValue false (a close from the server is a loss: reconnect with backoff)
   */
  readonly serverCloseIsNotice?: boolean | undefined;
  /**
   * Read an instrument key of this venue. Throws `ConfigError(where, ...)` for a wrong market type or
   * a symbol that breaks the venue's rules.
   */
  parseInstrument(key: string, where: string, marketId: number): I;
  /** The sockets for these instruments, within `limits.topicsPerConnection` each. */
  sockets(instruments: readonly I[], urls: U): readonly SocketPlan<I>[];
  /** Parse one text frame that came on `socket`. */
  parseMessage(text: string, socket: SocketPlan<I>): VenueMessage;
  readonly history: VenueHistory<I, U>;
  /** @defaultValue none (symbols are not checked at start) */
  readonly symbols?: VenueSymbols<U> | undefined;
}
