/**
 * Options of a kit source (every streaming venue), their defaults, and the instruments they name. Every
 * option comes from the config section `market_data.sources.<venue>` (snake_case there, camelCase here);
 * a wrong value is a ConfigError naming that key. The venue's URLs are the adapter's own options.
 */
import { isInstrumentKey, splitInstrumentKey, validateInstrumentKey } from '../../contracts/catalog.js';
import { ConfigError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { silentLogger } from '../../util/log.js';
import { withDefaults } from '../../util/defaults.js';
import type { VenueAdapter, VenueInstrument } from './venue.js';

export interface KitSourceOptions {
  /**
   * Instrument keys served: `<venue>:<market>:<SYMBOL>` of the adapter's venue and markets. At least one.
   */
  readonly instruments: readonly string[];
  /**
   * Numeric market id per instrument key (the contract's `market_id`).
   * @defaultValue none (market id 0 for every instrument)
   */
  readonly marketIds?: Readonly<Record<string, number>> | undefined;
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
   * is silent: it is dropped and reconnected, ms. Frame pings go every third of it, text pings at the
   * venue's interval. Not counted while the socket is paused for back-pressure.
   * @defaultValue 30000
   */
  readonly silenceTimeoutMs?: number | undefined;
  /**
   * Reconnect proactively after this long, before the venue's own cut, ms (23 h; an adapter's
   * `rotateAfterMs` lowers it).
   * @defaultValue 82800000
   */
  readonly rotateAfterMs?: number | undefined;
  /**
   * A minute whose closing message has not arrived this long after its close is fetched from REST, ms.
   * @defaultValue 10000
   */
  readonly lateGraceMs?: number | undefined;
  /**
   * How often the late-minute check runs, ms (real time).
   * @defaultValue 1000
   */
  readonly gapCheckIntervalMs?: number | undefined;
  /**
   * History (REST) calls of this source allowed in any sliding 60 s window, over all its markets
   * (config `max_history_calls_per_min`), calls. The venue's own weight limits apply on top, shared by
   * the whole process.
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

/** The defaults of {@link KitSourceOptions}, applied by `resolveKitOptions`. */
export const KIT_DEFAULTS = Object.freeze({
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
} satisfies Partial<KitSourceOptions>);

export interface ResolvedKitOptions<I extends VenueInstrument> {
  readonly instruments: readonly I[];
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

/** Largest delay a Node timer can hold. */
const MAX_TIMER_MS = 2_147_483_647;

/** The config key of option `name` (camelCase) of `venue`'s section. */
export function optionKey(venue: string, name: string): string {
  return `market_data.sources.${venue}.${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}

function int(venue: string, name: string, v: number, min: number, max = MAX_TIMER_MS): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(
      optionKey(venue, name),
      `expected an integer from ${min} to ${max}, got ${String(v)}`,
    );
  }
  return v;
}

/**
 * Validate a base URL option (`ws_url`, `rest_url`) of `venue` and return it without trailing slashes.
 * Throws ConfigError naming the key.
 */
export function baseUrlOption(venue: string, name: string, raw: string, schemes: readonly string[]): string {
  const k = optionKey(venue, name);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(k, `not a URL: ${JSON.stringify(raw)}`);
  }
  if (!schemes.includes(url.protocol)) {
    throw new ConfigError(k, `expected a ${schemes.join(' or ')} URL, got ${JSON.stringify(raw)}`);
  }
  if (url.search || url.hash) throw new ConfigError(k, 'expected a base URL without query or fragment');
  return raw.replace(/\/+$/, '');
}

/**
 * Read one instrument key of the adapter's venue: the key's form, its venue and market type here, the
 * symbol's rules in `adapter.parseInstrument`. `where` names it in errors.
 */
export function parseVenueInstrument<I extends VenueInstrument>(
  adapter: VenueAdapter<I>,
  raw: string,
  where: string,
  marketId: number,
): I {
  try {
    validateInstrumentKey(raw);
  } catch (err) {
    throw new ConfigError(where, err instanceof Error ? err.message : String(err), { cause: err });
  }
  const { exchange, marketType } = splitInstrumentKey(raw);
  if (exchange !== adapter.venue) {
    throw new ConfigError(where, `${raw}: exchange must be "${adapter.venue}"`);
  }
  if (!adapter.markets.includes(marketType)) {
    const list = adapter.markets.map((m) => `"${m}"`).join(', ');
    throw new ConfigError(where, `${raw}: market type must be one of ${list}`);
  }
  return adapter.parseInstrument(raw, where, marketId);
}

/** Validate the options and fill in defaults. Throws ConfigError naming the offending key. */
export function resolveKitOptions<I extends VenueInstrument>(
  adapter: VenueAdapter<I>,
  options: KitSourceOptions,
): ResolvedKitOptions<I> {
  const venue = adapter.venue;
  const prefix = `market_data.sources.${venue}`;
  const opts = withDefaults(KIT_DEFAULTS, options);
  const marketIds = opts.marketIds ?? {};
  for (const k of Object.keys(marketIds)) {
    if (!isInstrumentKey(k) || !opts.instruments.includes(k)) {
      throw new ConfigError(`${prefix}.market_ids`, `${JSON.stringify(k)} is not one of the instruments`);
    }
  }
  if (opts.instruments.length === 0)
    throw new ConfigError(`${prefix}.instruments`, 'at least one instrument is needed');
  const instruments = opts.instruments.map((raw, i) => {
    const marketId = marketIds[raw] ?? 0;
    if (!Number.isSafeInteger(marketId) || marketId < 0) {
      throw new ConfigError(`${prefix}.market_ids.${raw}`, 'expected a non-negative integer');
    }
    return parseVenueInstrument(adapter, raw, `${prefix}.instruments[${i}]`, marketId);
  });
  const seen = new Set<string>();
  for (const i of instruments) {
    if (seen.has(i.spec.instrumentKey)) {
      throw new ConfigError(`${prefix}.instruments`, `${i.spec.instrumentKey} is listed twice`);
    }
    seen.add(i.spec.instrumentKey);
  }
  const reconnectBaseMs = int(venue, 'reconnectBaseMs', opts.reconnectBaseMs, 1);
  const reconnectMaxMs = int(venue, 'reconnectMaxMs', opts.reconnectMaxMs, reconnectBaseMs);
  const jitter = opts.reconnectJitter;
  if (!(jitter >= 0 && jitter <= 1))
    throw new ConfigError(optionKey(venue, 'reconnectJitter'), 'expected a number from 0 to 1');
  const since = opts.since ?? null;
  if (since !== null && (!Number.isSafeInteger(since) || since < 0)) {
    throw new ConfigError(optionKey(venue, 'since'), 'expected epoch milliseconds');
  }
  const fetchImpl = opts.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function')
    throw new ConfigError(optionKey(venue, 'fetch'), 'no fetch implementation available');
  return {
    instruments,
    reconnectBaseMs,
    reconnectMaxMs,
    reconnectJitter: jitter,
    silenceTimeoutMs: int(venue, 'silenceTimeoutMs', opts.silenceTimeoutMs, 30),
    rotateAfterMs: int(venue, 'rotateAfterMs', opts.rotateAfterMs, 10),
    lateGraceMs: int(venue, 'lateGraceMs', opts.lateGraceMs, 0),
    gapCheckIntervalMs: int(venue, 'gapCheckIntervalMs', opts.gapCheckIntervalMs, 5),
    maxHistoryCallsPerMin: int(venue, 'maxHistoryCallsPerMin', opts.maxHistoryCallsPerMin, 1, 100_000),
    restTimeoutMs: int(venue, 'restTimeoutMs', opts.restTimeoutMs, 10),
    queueCapacity: int(venue, 'queueCapacity', opts.queueCapacity, 2, 1_000_000),
    since,
    now: opts.now,
    fetch: fetchImpl,
    logger: opts.logger,
  };
}
