/**
 * Options of the Binance source, their defaults, and the instruments they name. Every option comes from
 * the config section `market_data.sources.binance` (snake_case there, camelCase here); a wrong value is a
 * ConfigError naming that key.
 */
import { isInstrumentKey, validateInstrumentKey } from '../../../contracts/catalog.js';
import { ConfigError } from '../../../util/errors.js';
import type { Logger } from '../../../util/log.js';
import { silentLogger } from '../../../util/log.js';
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
  /** Numeric market id per instrument key (the contract's `market_id`). Default: 0 for every instrument. */
  readonly marketIds?: Readonly<Record<string, number>>;
  /**
   * Spot WebSocket base (`ws_url`), scheme, host and optional path prefix; the source appends
   * `/stream?streams=...`. Default `wss://stream.binance.com:9443`.
   */
  readonly wsUrl?: string;
  /** Spot REST base (`rest_url`); the source appends `/api/v3/klines`. Default `https://api.binance.com`. */
  readonly restUrl?: string;
  /** USD-M futures WebSocket base (`futures_ws_url`). Default `wss://fstream.binance.com`. */
  readonly futuresWsUrl?: string;
  /** USD-M futures REST base (`futures_rest_url`); the source appends `/fapi/v1/klines`. Default `https://fapi.binance.com`. */
  readonly futuresRestUrl?: string;
  /**
   * First reconnect delay and first history retry delay after an error, ms. Doubles per failed attempt
   * up to `reconnectMaxMs`; back to the base after a good cycle (data received / a call answered).
   * Default 5000 (the backoff starts at 5 s).
   */
  readonly reconnectBaseMs?: number;
  /** Largest reconnect / history retry delay, ms. Default 300000 (300 s). */
  readonly reconnectMaxMs?: number;
  /**
   * Fraction of each reconnect delay that is random, 0..1 (spreads reconnects of many processes).
   * A delay d becomes a value in [d * (1 - jitter), d]. Default 0.2.
   */
  readonly reconnectJitter?: number;
  /**
   * A socket that delivers no message for this long, or leaves one of our pings unanswered this long,
   * is silent: it is dropped and reconnected. We ping every third of it. Not counted while the socket
   * is paused for back-pressure. Default 30000 ms (Binance pushes a kline update every 2 s).
   */
  readonly silenceTimeoutMs?: number;
  /** Reconnect proactively after this long, before Binance's 24 h cut. Default 23 h (82800000 ms). */
  readonly rotateAfterMs?: number;
  /**
   * A minute whose closing kline has not arrived this long after its close is fetched from REST.
   * Default 10000 ms.
   */
  readonly lateGraceMs?: number;
  /** How often the late-minute check runs, ms (real time). Default 1000. */
  readonly gapCheckIntervalMs?: number;
  /**
   * History (REST klines) calls allowed in any sliding 60 s window, over spot and futures together
   * (config `max_history_calls_per_min`). Default 30.
   */
  readonly maxHistoryCallsPerMin?: number;
  /** Timeout of one REST call, ms. Default 10000. */
  readonly restTimeoutMs?: number;
  /**
   * Events buffered for a slow consumer before the sockets are paused (resumed at half). Candles are
   * never dropped; ticks and invalid-message notices beyond twice this are dropped and counted.
   * Default 1000.
   */
  readonly queueCapacity?: number;
  /**
   * Epoch ms of the first candle wanted. When set, the closed minutes from here on are fetched from
   * REST at start and before the first live candle. Default: none (the first live candle starts the
   * sequence, nothing is fetched before it).
   */
  readonly since?: number;
  /**
   * Market clock, epoch ms: decides which minutes are closed and which closing messages are late.
   * Default `Date.now`. Connection timers (silence, rotation, backoff, rate limit) use real time.
   */
  readonly now?: () => number;
  /** HTTP client for REST calls. Default the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** Logger. Default silent. */
  readonly logger?: Logger;
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

export const BINANCE_DEFAULTS = {
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
} as const;

/** Streams per connection Binance accepts: 1024 on spot, 200 on USD-M futures; two per instrument. */
const MAX_STREAMS: Readonly<Record<BinanceMarket, number>> = { spot: 1024, futures: 200 };
/** Largest delay a Node timer can hold. */
const MAX_TIMER_MS = 2_147_483_647;
const SYMBOL_RE = /^[A-Z0-9_]{2,40}$/;
const PREFIX = 'market_data.sources.binance';

function key(name: string): string {
  return `${PREFIX}.${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}

function int(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max = MAX_TIMER_MS,
): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(key(name), `expected an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function baseUrl(
  name: string,
  value: string | undefined,
  fallback: string,
  schemes: readonly string[],
): string {
  const raw = value ?? fallback;
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
export function resolveBinanceOptions(opts: BinanceSourceOptions): ResolvedBinanceOptions {
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
  const reconnectBaseMs = int('reconnectBaseMs', opts.reconnectBaseMs, BINANCE_DEFAULTS.reconnectBaseMs, 1);
  const reconnectMaxMs = int(
    'reconnectMaxMs',
    opts.reconnectMaxMs,
    BINANCE_DEFAULTS.reconnectMaxMs,
    reconnectBaseMs,
  );
  const jitter = opts.reconnectJitter ?? BINANCE_DEFAULTS.reconnectJitter;
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
      spot: baseUrl('wsUrl', opts.wsUrl, BINANCE_DEFAULTS.wsUrl, ws),
      futures: baseUrl('futuresWsUrl', opts.futuresWsUrl, BINANCE_DEFAULTS.futuresWsUrl, ws),
    },
    restUrl: {
      spot: baseUrl('restUrl', opts.restUrl, BINANCE_DEFAULTS.restUrl, http),
      futures: baseUrl('futuresRestUrl', opts.futuresRestUrl, BINANCE_DEFAULTS.futuresRestUrl, http),
    },
    reconnectBaseMs,
    reconnectMaxMs,
    reconnectJitter: jitter,
    silenceTimeoutMs: int('silenceTimeoutMs', opts.silenceTimeoutMs, BINANCE_DEFAULTS.silenceTimeoutMs, 30),
    rotateAfterMs: int('rotateAfterMs', opts.rotateAfterMs, BINANCE_DEFAULTS.rotateAfterMs, 10),
    lateGraceMs: int('lateGraceMs', opts.lateGraceMs, BINANCE_DEFAULTS.lateGraceMs, 0),
    gapCheckIntervalMs: int(
      'gapCheckIntervalMs',
      opts.gapCheckIntervalMs,
      BINANCE_DEFAULTS.gapCheckIntervalMs,
      5,
    ),
    maxHistoryCallsPerMin: int(
      'maxHistoryCallsPerMin',
      opts.maxHistoryCallsPerMin,
      BINANCE_DEFAULTS.maxHistoryCallsPerMin,
      1,
      100_000,
    ),
    restTimeoutMs: int('restTimeoutMs', opts.restTimeoutMs, BINANCE_DEFAULTS.restTimeoutMs, 10),
    queueCapacity: int('queueCapacity', opts.queueCapacity, BINANCE_DEFAULTS.queueCapacity, 2, 1_000_000),
    since,
    now: opts.now ?? Date.now,
    fetch: fetchImpl,
    logger: opts.logger ?? silentLogger,
  };
}
