/**
 * The `market_data` section: instruments, the source and its settings, snapshot and status cadence,
 * and the `live_feed.redis_streams` block (missing = publishing disabled).
 */
import { z } from 'zod';
import { INSTRUMENT_KEY_MAX, INSTRUMENT_KEY_RE, splitInstrumentKey } from '../contracts/catalog.js';
import { ConfigError } from '../util/errors.js';

/**
 * Venues marketbus has a streaming source for; an instrument key's exchange part names its venue.
 * `src/marketdata/venues.ts` builds each one's source.
 */
export const MARKET_VENUES = ['binance', 'bybit', 'okx'] as const;
export type MarketVenue = (typeof MARKET_VENUES)[number];

/** The exchange part of simulated keys (`sim:spot:BTCUSDT`). */
export const SIMULATED_EXCHANGE = 'sim';

const wsUrl = (fallback: string) =>
  z
    .string()
    .regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL')
    .default(fallback);
const httpUrl = (fallback: string) =>
  z
    .string()
    .regex(/^https?:\/\//, 'must be an http(s) URL')
    .default(fallback);

const instrumentKey = z
  .string()
  .max(INSTRUMENT_KEY_MAX, `at most ${INSTRUMENT_KEY_MAX} characters`)
  .regex(INSTRUMENT_KEY_RE, 'expected <exchange>:<market_type>:<SYMBOL>, e.g. binance:spot:BTCUSDT');

/** An instrument: its key, or `{ key, market_id }`. */
const instrument = z.preprocess(
  (v) => (typeof v === 'string' ? { key: v } : v),
  z.object({ key: instrumentKey, market_id: z.number().int().min(0).optional() }).strict(),
);

/** `live_feed.redis_streams`: keys and defaults as the original feed's config has them (its files load). */
export const redisStreamsSchema = z
  .object({
    enabled: z.boolean().default(true),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65535).default(6379),
    db: z.number().int().min(0).max(15).default(0),
    password_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    socket_timeout_s: z.number().positive().max(300).default(2),
    connect_timeout_s: z.number().positive().max(300).default(2),
    stream_mode: z
      .literal('per_instrument', { message: 'only per_instrument is supported' })
      .default('per_instrument'),
    stream_prefix: z
      .literal('md.candles.1m', { message: 'must be md.candles.1m (the public contract)' })
      .default('md.candles.1m'),
    retention_days: z.number().positive().max(3650).default(7),
    maxlen_approx: z.number().int().positive().optional(),
  })
  .strict();

export const marketDataSchema = z
  .object({
    /**
     * Absent: one source per venue present among the instruments (`sim` keys: the simulated source).
     * `simulated` or `replay`: that one source serves every instrument, whatever its venue. A venue
     * (`binance`, `bybit`, `okx`): that venue's source alone, every key must be of that venue (the
     * single-source configs of before). See {@link sourcePlan}.
     */
    source: z.enum(['simulated', 'replay', ...MARKET_VENUES]).optional(),
    instruments: z.array(instrument).min(1).max(10_000).prefault(['sim:spot:BTCUSDT', 'sim:fx:XAUUSD']),
    price_snap_interval_seconds: z.number().min(1).max(60).default(3),
    status_interval_seconds: z.number().min(1).max(300).default(5),
    /** Seconds without ticks (market open) before an instrument is `stale` and the feed not STREAM. */
    stale_after_seconds: z.number().min(1).max(3600).default(30),
    max_history_calls_per_min: z.number().int().min(1).max(6000).default(30),
    queue_capacity: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Most candles kept for publishing while Redis is unreachable; past it new ones are dropped and counted. */
    outbox_capacity: z.number().int().min(1).max(10_000_000).default(100_000),
    sources: z
      .object({
        simulated: z
          .object({
            seed: z.number().int().default(42),
            speed: z.number().positive().max(10_000_000).default(1),
            /** Simulated ms between two random-walk steps: the walk's cost grows with speed / this. */
            tick_interval_ms: z.number().int().min(10).max(60_000).default(1000),
            /** Ticks per instrument per real second at most (0 = none). */
            max_ticks_per_second: z.number().min(0).max(1000).default(10),
          })
          .strict()
          .prefault({}),
        replay: z
          .object({ file: z.string().min(1).optional(), speed: z.number().min(0).default(0) })
          .strict()
          .prefault({}),
        /** Binance spot (`binance:spot:*`) and USD-M futures (`binance:futures:*`). */
        binance: z
          .object({
            ws_url: wsUrl('wss://stream.binance.com:9443'),
            rest_url: httpUrl('https://api.binance.com'),
            futures_ws_url: wsUrl('wss://fstream.binance.com'),
            futures_rest_url: httpUrl('https://fapi.binance.com'),
          })
          .strict()
          .prefault({}),
        /**
         * Bybit v5 (`bybit:spot:*`, `bybit:linear:*`): the public spot and linear sockets are `ws_url`
         * plus `/v5/public/spot` and `/v5/public/linear`; REST is `rest_url` plus `/v5/market/...`
         * (docs/venues/bybit.md).
         */
        bybit: z
          .object({
            ws_url: wsUrl('wss://stream.bybit.com'),
            rest_url: httpUrl('https://api.bybit.com'),
          })
          .strict()
          .prefault({}),
        /**
         * OKX v5 (`okx:spot:*`, `okx:swap:*`): candles on the business socket, bid/ask on the public one,
         * REST under `rest_url` plus `/api/v5/market/...` (docs/venues/okx.md).
         */
        okx: z
          .object({
            ws_url: wsUrl('wss://ws.okx.com:8443/ws/v5/public'),
            business_ws_url: wsUrl('wss://ws.okx.com:8443/ws/v5/business'),
            rest_url: httpUrl('https://www.okx.com'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    live_feed: z.object({ redis_streams: redisStreamsSchema.optional() }).strict().optional(),
  })
  .strict()
  .superRefine((md, ctx) => {
    md.instruments.forEach((inst, i) => {
      const problem = sourceProblem(md.source, inst.key);
      // One path part, so the error names `market_data.instruments[i]` (as the sources' notices do).
      if (problem) ctx.addIssue({ code: 'custom', path: [`instruments[${i}]`], message: problem });
    });
  });

export type MarketDataConfig = z.infer<typeof marketDataSchema>;

/** A source the feed runs: the simulated or replay source, or one venue's. */
export type SourceKind = 'simulated' | 'replay' | MarketVenue;

/** An instrument of the config with its place in `market_data.instruments`. */
export interface PlannedInstrument {
  readonly key: string;
  readonly marketId: number | undefined;
  /** `market_data.instruments[i]`: what errors and notices about it name. */
  readonly configKey: string;
}

/** One source the feed runs and the instruments it serves, in config order. */
export interface PlannedSource {
  readonly kind: SourceKind;
  readonly instruments: readonly PlannedInstrument[];
}

/**
 * The sources the feed runs for this config (see `source`): absent, one per venue present among the
 * instruments in the order the venues first appear, `sim` keys to the simulated source; otherwise the
 * one source named.
 */
export function sourcePlan(md: MarketDataConfig): readonly PlannedSource[] {
  const byKind = new Map<SourceKind, PlannedInstrument[]>();
  md.instruments.forEach((inst, i) => {
    const kind = md.source ?? venueSource(inst.key);
    // The schema refused any key without a source; this only narrows the type.
    if (!kind) throw new ConfigError(instrumentConfigKey(i), sourceProblem(undefined, inst.key) ?? '');
    let list = byKind.get(kind);
    if (!list) byKind.set(kind, (list = []));
    list.push({ key: inst.key, marketId: inst.market_id, configKey: instrumentConfigKey(i) });
  });
  return [...byKind].map(([kind, instruments]) => ({ kind, instruments }));
}

/** The config key of the i-th instrument, `market_data.instruments[i]`. */
export function instrumentConfigKey(i: number): string {
  return `market_data.instruments[${i}]`;
}

/** The source that serves a key when `source` is absent: its venue, or simulated for `sim`; else null. */
function venueSource(key: string): 'simulated' | MarketVenue | null {
  const { exchange } = splitInstrumentKey(key);
  if (exchange === SIMULATED_EXCHANGE) return 'simulated';
  return (MARKET_VENUES as readonly string[]).includes(exchange) ? (exchange as MarketVenue) : null;
}

/** Why no source of this config serves `key`, or null when one does. */
function sourceProblem(source: MarketDataConfig['source'], key: string): string | null {
  if (source === 'simulated' || source === 'replay') return null;
  const { exchange } = splitInstrumentKey(key);
  if (source === undefined)
    return venueSource(key)
      ? null
      : `no source for venue "${exchange}" (keys may name ${MARKET_VENUES.join(', ')}, or ${SIMULATED_EXCHANGE} for the simulated source)`;
  return exchange === source
    ? null
    : `source ${source} serves ${source}:* keys only; leave market_data.source out to run one source per venue`;
}
