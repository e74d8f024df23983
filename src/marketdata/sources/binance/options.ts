/**
 * Options of the Binance source, their defaults, and the instruments they name. Every option comes from
 * the config section `market_data.sources.binance` (snake_case there, camelCase here); a wrong value is a
 * ConfigError naming that key.
 */
import { isInstrumentKey, validateInstrumentKey } from '../../../contracts/catalog.js';
import { ConfigError } from '../../../util/errors.js';
import type { Logger } from '../../../util/log.js';
import { silentLogger } from '../../../util/log.js';
import { withDefaults } from '../../../util/defaults.js';
import type { InstrumentSpec } from '../../types.js';
import { splitInstrumentKey } from '../../../contracts/catalog.js';

/** `spot` (api.binance.com) or USD-M futures (`futures`, fapi.binance.com): separate sockets and URLs. */
export type BinanceMarket = 'spot' | 'futures';

export const BINANCE_MARKETS: readonly BinanceMarket[] = ['spot', 'futures'];

export interface BinanceSourceOptions {
  /**
   * Instrument keys served: `binance:spot:<SYMBOL>` or `binance:futures:<SYMBOL>` (USD-M). At least one.
   * The symbol is Binance's, upper case (`BTCUSDT`, `BTCUSDT_250926`).
   */
  readonly instruments: readonly string[];
  /**
   * Numeric market id per instrument key (the contract's `market_id`).
   * @defaultValue none (market id 0 for every instrument)
   */
  readonly marketIds?: Readonly<Record<string, number>> | undefined;
  /**
   * Spot WebSocket base (`ws_url`), scheme, host and optional path prefix; the source appends
   * `/stream?streams=...`.
   * @defaultValue `wss://stream.binance.com:9443`
   */
  readonly wsUrl?: string | undefined;
  /**
   * Spot REST base (`rest_url`); the source appends `/api/v3/klines`.
   * @defaultValue `https://api.binance.com`
   */
  readonly restUrl?: string | undefined;
  /**
   * USD-M futures WebSocket base (`futures_ws_url`).
   * @defaultValue `wss://fstream.binance.com`
   */
  readonly futuresWsUrl?: string | undefined;
  /**
   * USD-M futures REST base (`futures_rest_url`); the source appends `/fapi/v1/klines`.
   * @defaultValue `https://fapi.binance.com`
   */
  readonly futuresRestUrl?: string | undefined;
  /**
   * First reconnect delay and first history retry delay after an error, ms. Doubles per failed attempt
   * up to `reconnectMaxMs`; back to the base after a good cycle (data received / a call answered).
   * @defaultValue 5000
   */
  readonly reconnectBaseMs?: number | undefined;
  /**
   * Largest reconnect / history retry delay, ms (300 s).
   * @defaultValue 300000
   */
  readonly reconnectMaxMs?: number | undefined;
  /**
   * Fraction of each reconnect delay that is random, 0..1 (spreads reconnects of many processes).
   * A delay d becomes a value in [d * (1 - jitter), d].
   * @defaultValue 0.2
   */
  readonly reconnectJitter?: number | undefined;
  /**
   * A socket that delivers no message for this long, or leaves one of our pings unanswered this long,
   * is silent: it is dropped and reconnected, ms. We ping every third of it. Not counted while the
   * socket is paused for back-pressure (Binance pushes a kline update every 2 s).
   * @defaultValue 30000
   */
  readonly silenceTimeoutMs?: number | undefined;
  /**
   * Reconnect proactively after this long, before Binance's 24 h cut, ms (23 h).
   * @defaultValue 82800000
   */
  readonly rotateAfterMs?: number | undefined;
  /**
   * A minute whose closing kline has not arrived this long after its close is fetched from REST, ms.
   * @defaultValue 10000
   */
  readonly lateGraceMs?: number | undefined;
  /**
   * How often the late-minute check runs, ms (real time).
   * @defaultValue 1000
   */
  readonly gapCheckIntervalMs?: number | undefined;
  /**
   * History (REST klines) calls allowed in any sliding 60 s window, over spot and futures together
   * (config `max_history_calls_per_min`), calls.
   * @defaultValue 30
   */
  readonly maxHistoryCallsPerMin?: number | undefined;
  /**
   * Timeout of one REST call, ms.
   * @defaultValue 10000
   */
  readonly restTimeoutMs?: number | undefined;
  /**
   * Events buffered for a slow consumer before the sockets are paused (resumed at half), events.
   * Candles are never dropped; ticks and invalid-message notices beyond twice this are dropped and
   * counted.
   * @defaultValue 1000
   */
  readonly queueCapacity?: number | undefined;
  /**
   * Epoch ms of the first candle wanted. When set, the closed minutes from here on are fetched from
   * REST at start and before the first live candle.
   * @defaultValue none (the first live candle starts the sequence, nothing is fetched before it)
   */
  readonly since?: number | undefined;
  /**
   * Market clock, epoch ms: decides which minutes are closed and which closing messages are late.
   * Connection timers (silence, rotation, backoff, rate limit) use real time.
   * @defaultValue `Date.now`
   */
  readonly now?: (() => number) | undefined;
  /**
   * HTTP client for REST calls.
   * @defaultValue the global `fetch` (looked up when the options are resolved)
   */
  readonly fetch?: typeof fetch | undefined;
  /**
   * Logger.
   * @defaultValue `silentLogger`
   */
  readonly logger?: Logger | undefined;
}

export interface BinanceInstrument {
  readonly spec: InstrumentSpec;
  readonly market: BinanceMarket;
  /** Binance symbol, upper case (`BTCUSDT`). */
  readonly symbol: string;
  /** Lower-case symbol used in stream names (`btcusdt`). */
  readonly streamSymbol: string;
}

export interface ResolvedBinanceOptions {
  readonly instruments: readonly BinanceInstrument[];
  readonly wsUrl: Readonly<Record<BinanceMarket, string>>;
  readonly restUrl: Readonly<Record<BinanceMarket, string>>;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  readonly reconnectJitter: number;
  readonly silenceTimeoutMs: number;
  readonly rotateAfterMs: number;
  readonly lateGraceMs: number;
  readonly gapCheckIntervalMs: number;
  readonly maxHistoryCallsPerMin: number;
  readonly restTimeoutMs: number;
  readonly queueCapacity: number;
  readonly since: number | null;
  readonly now: () => number;
  readonly fetch: typeof fetch;
  readonly logger: Logger;
}

/** The defaults of {@link BinanceSourceOptions}, applied by `resolveBinanceOptions`. */
export const BINANCE_DEFAULTS = Object.freeze({
  wsUrl: 'wss://stream.binance.com:9443',
  restUrl: 'https://api.binance.com',
  futuresWsUrl: 'wss://fstream.binance.com',
  futuresRestUrl: 'https://fapi.binance.com',
  reconnectBaseMs: 5_000,
  reconnectMaxMs: 300_000,
  reconnectJitter: 0.2,
  silenceTimeoutMs: 30_000,
  rotateAfterMs: 23 * 3_600_000,
  lateGraceMs: 10_000,
  gapCheckIntervalMs: 1_000,
  maxHistoryCallsPerMin: 30,
  restTimeoutMs: 10_000,
  queueCapacity: 1_000,
  now: Date.now,
  logger: silentLogger,
} satisfies Partial<BinanceSourceOptions>);

/** Streams per connection Binance accepts: 1024 on spot, 200 on USD-M futures; two per instrument. */
const MAX_STREAMS: Readonly<Record<BinanceMarket, number>> = { spot: 1024, futures: 200 };
/** Largest delay a Node timer can hold. */
const MAX_TIMER_MS = 2_147_483_647;
const SYMBOL_RE = /^[A-Z0-9_]{2,40}$/;
const PREFIX = 'market_data.sources.binance';

function key(name: string): string {
  return `${PREFIX}.${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}

function int(name: string, v: number, min: number, max = MAX_TIMER_MS): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(key(name), `expected an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function baseUrl(name: string, raw: string, schemes: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(key(name), `not a URL: ${JSON.stringify(raw)}`);
  }
  if (!schemes.includes(url.protocol)) {
    throw new ConfigError(key(name), `expected a ${schemes.join(' or ')} URL, got ${JSON.stringify(raw)}`);
  }
  if (url.search || url.hash)
    throw new ConfigError(key(name), 'expected a base URL without query or fragment');
  return raw.replace(/\/+$/, '');
}

function parseInstrument(
  raw: string,
  index: number,
  marketIds: Readonly<Record<string, number>>,
): BinanceInstrument {
  const where = `${PREFIX}.instruments[${index}]`;
  try {
    validateInstrumentKey(raw);
  } catch (err) {
    throw new ConfigError(where, err instanceof Error ? err.message : String(err), { cause: err });
  }
  const { exchange, marketType, symbol } = splitInstrumentKey(raw);
  if (exchange !== 'binance') throw new ConfigError(where, `${raw}: exchange must be "binance"`);
  if (marketType !== 'spot' && marketType !== 'futures') {
    throw new ConfigError(where, `${raw}: market type must be "spot" or "futures" (USD-M)`);
  }
  if (!SYMBOL_RE.test(symbol)) throw new ConfigError(where, `${raw}: symbol must match ${SYMBOL_RE.source}`);
  const marketId = marketIds[raw] ?? 0;
  if (!Number.isSafeInteger(marketId) || marketId < 0) {
    throw new ConfigError(`${PREFIX}.market_ids.${raw}`, 'expected a non-negative integer');
  }
  return {
    spec: { instrumentKey: raw, symbol, marketId },
    market: marketType,
    symbol,
    streamSymbol: symbol.toLowerCase(),
  };
}

/** Validate the options and fill in defaults. Throws ConfigError naming the offending key. */
export function resolveBinanceOptions(options: BinanceSourceOptions): ResolvedBinanceOptions {
  const opts = withDefaults(BINANCE_DEFAULTS, options);
  const marketIds = opts.marketIds ?? {};
  for (const k of Object.keys(marketIds)) {
    if (!isInstrumentKey(k) || !opts.instruments.includes(k)) {
      throw new ConfigError(`${PREFIX}.market_ids`, `${JSON.stringify(k)} is not one of the instruments`);
    }
  }
  if (opts.instruments.length === 0)
    throw new ConfigError(`${PREFIX}.instruments`, 'at least one instrument is needed');
  const instruments = opts.instruments.map((k, i) => parseInstrument(k, i, marketIds));
  const seen = new Set<string>();
  for (const i of instruments) {
    if (seen.has(i.spec.instrumentKey)) {
      throw new ConfigError(`${PREFIX}.instruments`, `${i.spec.instrumentKey} is listed twice`);
    }
    seen.add(i.spec.instrumentKey);
  }
  for (const m of BINANCE_MARKETS) {
    const streams = instruments.filter((i) => i.market === m).length * 2;
    if (streams > MAX_STREAMS[m]) {
      throw new ConfigError(
        `${PREFIX}.instruments`,
        `${streams} ${m} streams exceed Binance's ${MAX_STREAMS[m]} per connection`,
      );
    }
  }
  const reconnectBaseMs = int('reconnectBaseMs', opts.reconnectBaseMs, 1);
  const reconnectMaxMs = int('reconnectMaxMs', opts.reconnectMaxMs, reconnectBaseMs);
  const jitter = opts.reconnectJitter;
  if (!(jitter >= 0 && jitter <= 1))
    throw new ConfigError(key('reconnectJitter'), 'expected a number from 0 to 1');
  const since = opts.since ?? null;
  if (since !== null && (!Number.isSafeInteger(since) || since < 0)) {
    throw new ConfigError(key('since'), 'expected epoch milliseconds');
  }
  const ws = ['ws:', 'wss:'];
  const http = ['http:', 'https:'];
  const fetchImpl = opts.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function')
    throw new ConfigError(key('fetch'), 'no fetch implementation available');
  return {
    instruments,
    wsUrl: {
      spot: baseUrl('wsUrl', opts.wsUrl, ws),
      futures: baseUrl('futuresWsUrl', opts.futuresWsUrl, ws),
    },
    restUrl: {
      spot: baseUrl('restUrl', opts.restUrl, http),
      futures: baseUrl('futuresRestUrl', opts.futuresRestUrl, http),
    },
    reconnectBaseMs,
    reconnectMaxMs,
    reconnectJitter: jitter,
    silenceTimeoutMs: int('silenceTimeoutMs', opts.silenceTimeoutMs, 30),
    rotateAfterMs: int('rotateAfterMs', opts.rotateAfterMs, 10),
    lateGraceMs: int('lateGraceMs', opts.lateGraceMs, 0),
    gapCheckIntervalMs: int('gapCheckIntervalMs', opts.gapCheckIntervalMs, 5),
    maxHistoryCallsPerMin: int('maxHistoryCallsPerMin', opts.maxHistoryCallsPerMin, 1, 100_000),
    restTimeoutMs: int('restTimeoutMs', opts.restTimeoutMs, 10),
    queueCapacity: int('queueCapacity', opts.queueCapacity, 2, 1_000_000),
    since,
    now: opts.now,
    fetch: fetchImpl,
    logger: opts.logger,
  };
}
