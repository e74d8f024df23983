/**
 * The `market_data` section: instruments, the source and its settings, snapshot and status cadence,
 * and the `live_feed.redis_streams` block (missing = publishing disabled).
 */
import { z } from 'zod';
import { INSTRUMENT_KEY_MAX, INSTRUMENT_KEY_RE } from '../contracts/catalog.js';

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
    source: z.enum(['simulated', 'replay', 'binance']).default('simulated'),
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
        binance: z
          .object({
            ws_url: z
              .string()
              .regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL')
              .default('wss://stream.binance.com:9443'),
            rest_url: z
              .string()
              .regex(/^https?:\/\//, 'must be an http(s) URL')
              .default('https://api.binance.com'),
            futures_ws_url: z
              .string()
              .regex(/^wss?:\/\//, 'must be a ws:// or wss:// URL')
              .default('wss://fstream.binance.com'),
            futures_rest_url: z
              .string()
              .regex(/^https?:\/\//, 'must be an http(s) URL')
              .default('https://fapi.binance.com'),
          })
          .strict()
          .default({
            ws_url: 'wss://stream.binance.com:9443',
            rest_url: 'https://api.binance.com',
            futures_ws_url: 'wss://fstream.binance.com',
            futures_rest_url: 'https://fapi.binance.com',
          }),
      })
      .strict()
      .prefault({}),
    live_feed: z.object({ redis_streams: redisStreamsSchema.optional() }).strict().optional(),
  })
  .strict();

export type MarketDataConfig = z.infer<typeof marketDataSchema>;
