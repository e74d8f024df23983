/**
 * What the source conformance suite (`sources.test.ts`) needs from one venue: a local
 * server that speaks the venue's documented protocol on loopback (WebSocket and REST on one port), with
 * controls for the faults the suite tries, and the source the feed would build for it. One harness per
 * venue (`binance.ts`, `bybit.ts`, `okx.ts`); the suite is written once and runs against each.
 *
 * The market clock is the suite's: the server's candles, event times and which minute is open follow
 * `now()`. Candle values are a deterministic function of symbol and minute, so the suite knows every
 * canonical candle without asking. Like the venue, the server sends updates of the open candle on
 * every candle subscription on its own (a few per second), so a socket that is not silent never looks
 * silent.
 */
import type { CandleValues } from '../../../src/marketdata/kit/venue.js';
import type { MarketSource } from '../../../src/marketdata/types.js';

/** Kit options a test sets to make faults show within seconds (the kit's option names). */
export interface ConformanceTimings {
  /** Silence timeout, ms. */
  readonly silenceTimeoutMs: number;
  /** Late grace before a missing close is fetched, ms. */
  readonly lateGraceMs: number;
  /** Late check cadence, ms. */
  readonly gapCheckIntervalMs: number;
  /** Reconnect backoff base and cap, ms. */
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  /** First minute wanted (fetched at start), or undefined. */
  readonly since?: number | undefined;
}

/** A source under test, with the counters the suite checks. */
export interface SourceUnderTest extends MarketSource {
  stats(): { readonly connects: number; readonly historyCalls: number; readonly duplicates: number };
}

/** One REST call the server received. */
export interface RestCall {
  /** Real time of arrival, epoch ms. */
  readonly at: number;
  readonly path: string;
  /** Its weight under the venue's documented REST limit. */
  readonly weight: number;
  /**
   * The HTTP status the server answered (the rate-limit case finds its rate-limited call by it).
   * @defaultValue unknown (the rate-limit case then fails)
   */
  readonly status?: number | undefined;
  /**
   * Whether the server answered it with the venue's rate-limit error, for venues whose error is not an
   * HTTP 429/418 (Bybit: HTTP 200 with retCode 10006, or HTTP 403 for the IP limit).
   * @defaultValue unknown (the status decides)
   */
  readonly rateLimited?: boolean | undefined;
}

export interface FakeVenueServer {
  /** `market_data.sources.<venue>` pointing at this server (e.g. `{ ws_url, rest_url }`). */
  readonly settings: Readonly<Record<string, string>>;
  /** The venue's documented limits the server enforces and the suite checks against. */
  readonly limits: {
    /** REST weight allowed per window (the tightest documented window). */
    readonly restWeight: number;
    readonly restWindowMs: number;
    /** New connections allowed per window. */
    readonly connections: number;
    readonly connectionsWindowMs: number;
    /** Subscribe messages per connection per window (Infinity when the URL carries them). */
    readonly subscribes: number;
    readonly subscribesWindowMs: number;
  };
  /** The source the feed builds for these keys against this server, with test timings. */
  createSource(keys: readonly string[], timings: ConformanceTimings): SourceUnderTest;
  /** The venue's candle of `key` for the minute at `openTime`; null if the venue has none. */
  canonical(key: string, openTime: number): CandleValues | null;
  /** Make `openTime` a minute without trades for `key`, the way this venue shows one (docs/venues). */
  zeroTrade(key: string, openTime: number): void;
  /** Send the closed candle of `key` for `openTime` on every socket subscribed to it; how many got it. */
  pushClose(key: string, openTime: number): number;
  /** Send an update of the still-open candle of `key` (closed flag false). */
  pushOpen(key: string, openTime: number): number;
  /** Send a top-of-book update of `key`. */
  pushQuote(key: string, bid: string, ask: string): number;
  /** Terminate every socket without a close frame (a network loss). */
  dropAll(): void;
  /** The venue's own server-initiated close or maintenance notice, as it documents it, on every socket. */
  serverClose(): void;
  /** Every socket stays open but sends nothing and answers no heartbeat, until `speak()`. */
  goSilent(): void;
  speak(): void;
  /** Answer the next REST candle call with the venue's rate-limit error (its status, code and headers). */
  rateLimitNext(retryAfterMs: number): void;
  /** Symbols the venue does not list (unknown to its instrument list and refused on subscribe). */
  unknownSymbols: Set<string>;
  /** REST candle and instrument-list calls received, in order. */
  readonly restCalls: readonly RestCall[];
  /** Times (real, epoch ms) at which new WebSocket connections were accepted. */
  readonly connectionTimes: readonly number[];
  /** Per connection, real times of its subscribe messages. */
  readonly subscribeTimes: ReadonlyMap<number, readonly number[]>;
  /** Sockets open now. */
  readonly openSockets: number;
  /** Resolves when at least `n` sockets are open and subscribed. */
  waitForSockets(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * How closed 1m candles reach a source: the shape of the venue's feed. The suite chooses the cases that
 * apply to a shape from these flags (never by skipping); a shape's own cases sit beside the common ones.
 *
 * What the server methods mean per shape:
 * - `closed-flag` (Binance, Bybit, OKX): `pushClose` sends the closed candle (the venue's closed flag) on
 *   every socket subscribed to the key; REST serves every minute closed by the market clock.
 * - `trade-built` (Coinbase): the venue has no closed 1m candle on its socket. `pushClose(key, t)` sends
 *   the trades of minute `t` (trade times inside it, the canonical candle is their aggregate) on every
 *   socket subscribed to its trades, returning how many sockets got them (0 for a zero-trade minute);
 *   the source closes the bar by its own timer at the minute's end plus its close grace. REST serves
 *   the venue's 1m candles of every minute closed by the clock (none for a zero-trade minute).
 * - `polled` (FXCM): closed candles come only from REST polls after each minute's close (plus a grace);
 *   sockets carry quotes only. `pushClose(key, t)` makes minute `t` available from the broker's history
 *   (before it, a REST reply for a range holding `t` leaves it out, as a broker that has not finished
 *   the bar does) and returns 1; a minute older than the one pushed last is available anyway.
 */
export type CandleShape = 'closed-flag' | 'trade-built' | 'polled';

/** What a venue's source can do, which decides the cases that apply to it. */
export interface SourceCapabilities {
  readonly candles: CandleShape;
  /** The venue sends a server-initiated close or maintenance notice (`serverClose` does it). */
  readonly serverNotice: boolean;
  /** The venue lists its symbols, so an unknown one is refused at start (`unknownSymbols`). */
  readonly symbolList: boolean;
  /**
   * Keys of this harness follow market hours (FX: closed from Friday 22:00 to Sunday 22:00 UTC); the
   * suite's clock (a Monday morning) keeps the common cases inside open hours.
   */
  readonly marketHours: boolean;
}

export interface VenueHarness {
  readonly venue: string;
  readonly capabilities: SourceCapabilities;
  /** Instrument keys under test: one spot and one derivatives market, e.g. bybit:spot:BTCUSDT. */
  readonly keys: readonly string[];
  /** Many keys of one market for the mass-reconnect case (more than one connection's topics if need be). */
  manyKeys(n: number): readonly string[];
  /** Start the venue's local server on a free loopback port, on the suite's market clock. */
  start(now: () => number): Promise<FakeVenueServer>;
}
