/**
 * Wire contract v1 of the market data streams (docs/contracts.md §6-7). Public: Python and Go
 * consumers read these fields by name. Changing a field name or meaning needs schema_version "2".
 */
import { z } from 'zod';
import { flatCodec, type Codec } from '../bus/codec.js';
import { idFromEpochMs } from '../bus/stream-id.js';
import { INSTRUMENT_KEY_RE } from './catalog.js';
import type { Candle, CandleOrigin, Tick } from './candle.js';
import { TIMEFRAME_MS } from './candle.js';
import { InvalidArgumentError } from '../util/errors.js';

export const CANDLE_SCHEMA_VERSION = '1';
export const PRICE_SCHEMA_VERSION = '1';

/** The 15 candle fields, in contract order (docs/contracts.md §6). */
export const CANDLE_FIELDS = [
  'schema_version',
  'market_id',
  'symbol',
  'instrument_key',
  'ts_open',
  'ts_close',
  'open',
  'high',
  'low',
  'close',
  'volume_base',
  'volume_quote',
  'source',
  'ingested_at',
  'ingest_id',
] as const;

export const PRICE_FIELDS = [
  'schema_version',
  'symbol',
  'instrument_key',
  'bid',
  'ask',
  'mid',
  'tick_ts',
  'snap_ts',
] as const;

/** A number as the contract writes it: plain decimal, no exponent, no float noise (at most 12 significant digits). */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) throw new InvalidArgumentError('formatNumber', `not a finite number: ${n}`);
  // Fast path: most prices already print short (an exchange's own decimals).
  const plain = String(n);
  if (plain.length <= 13 && !plain.includes('e')) return plain;
  const rounded = Number(n.toPrecision(12));
  if (Math.abs(rounded) >= 1e-6 && Math.abs(rounded) < 1e21) return String(rounded);
  if (rounded === 0) return '0';
  // Very small or large values: fixed notation without exponent.
  return rounded.toFixed(20).replace(/\.?0+$/, '');
}

const isoCache = new Map<number, string>();

/** ISO-8601 UTC with milliseconds, e.g. 2026-02-10T12:34:00.000Z. */
export function isoMs(epochMs: number): string {
  // Candle times repeat across every instrument of a minute: remember the last few.
  let s = isoCache.get(epochMs);
  if (s === undefined) {
    s = new Date(epochMs).toISOString();
    if (isoCache.size >= 256) isoCache.clear();
    isoCache.set(epochMs, s);
  }
  return s;
}

/** Epoch seconds with millisecond precision, e.g. 1764866660.123 (docs/contracts.md §7). */
export function epochSeconds(epochMs: number): string {
  return (Math.round(epochMs) / 1000).toFixed(3);
}

/** The deterministic stream ID of a candle: `<ts_open epoch ms>-0` (docs/contracts.md §6). */
export function candleId(c: Pick<Candle, 'tsOpen'>): string {
  return idFromEpochMs(c.tsOpen);
}

/** What the feed adds to a candle when it publishes it. */
export interface CandleEnvelope {
  readonly candle: Candle;
  /** When marketbus received the candle, epoch ms. */
  readonly ingestedAt: number;
  /** UUID of the ingestion (per process unless the source gives one). */
  readonly ingestId: string;
}

/** Contract `source` field: the candle's origin (`ws` live socket; other origins name themselves). */
function sourceField(origin: CandleOrigin): string {
  return origin;
}

const decimal = z
  .string()
  .regex(/^-?\d+(\.\d+)?$/, 'expected a decimal number')
  .transform(Number);
const isoTime = z.iso.datetime({ precision: 3 }).transform((s) => Date.parse(s));

const candleWire = z
  .object({
    schema_version: z.literal(CANDLE_SCHEMA_VERSION),
    market_id: z.string().regex(/^\d+$/, 'expected an integer').transform(Number),
    symbol: z.string().min(1).max(40),
    instrument_key: z.string().regex(INSTRUMENT_KEY_RE, 'not an instrument key').max(100),
    ts_open: isoTime,
    ts_close: isoTime,
    open: decimal,
    high: decimal,
    low: decimal,
    close: decimal,
    volume_base: decimal,
    volume_quote: z.union([z.literal('').transform(() => null), decimal]),
    source: z.enum(['ws', 'rest', 'sim', 'replay']),
    ingested_at: isoTime,
    ingest_id: z.string().min(1).max(64),
  })
  .loose()
  .superRefine((c, ctx) => {
    const tf = Object.entries(TIMEFRAME_MS).find(([, ms]) => ms === c.ts_close - c.ts_open);
    if (!tf)
      ctx.addIssue({
        code: 'custom',
        path: ['ts_close'],
        message: 'ts_close - ts_open is not a known interval',
      });
    if (c.high < Math.max(c.open, c.close, c.low) || c.low > Math.min(c.open, c.close)) {
      ctx.addIssue({ code: 'custom', path: ['high'], message: 'high/low do not enclose open/close' });
    }
  });

/** Candle v1 <-> fields. Decoding checks types, intervals and OHLC consistency. */
export const candleCodec: Codec<CandleEnvelope> = flatCodec<CandleEnvelope>({
  name: 'candle',
  schemaVersions: [CANDLE_SCHEMA_VERSION],
  schema: candleWire.transform((w): CandleEnvelope => ({
    candle: {
      instrumentKey: w.instrument_key,
      symbol: w.symbol,
      marketId: w.market_id,
      timeframe: w.ts_close - w.ts_open === TIMEFRAME_MS['5m'] ? '5m' : '1m',
      tsOpen: w.ts_open,
      tsClose: w.ts_close,
      open: w.open,
      high: w.high,
      low: w.low,
      close: w.close,
      volumeBase: w.volume_base,
      volumeQuote: w.volume_quote,
      origin: w.source,
    },
    ingestedAt: w.ingested_at,
    ingestId: w.ingest_id,
  })),
  toFields: ({ candle: c, ingestedAt, ingestId }) => ({
    schema_version: CANDLE_SCHEMA_VERSION,
    market_id: String(c.marketId),
    symbol: c.symbol,
    instrument_key: c.instrumentKey,
    ts_open: isoMs(c.tsOpen),
    ts_close: isoMs(c.tsClose),
    open: formatNumber(c.open),
    high: formatNumber(c.high),
    low: formatNumber(c.low),
    close: formatNumber(c.close),
    volume_base: formatNumber(c.volumeBase),
    volume_quote: c.volumeQuote === null ? '' : formatNumber(c.volumeQuote),
    source: sourceField(c.origin),
    ingested_at: isoMs(ingestedAt),
    ingest_id: ingestId,
  }),
});

/** A price snapshot (docs/contracts.md §7): the latest tick of one instrument at one snapshot cycle. */
export interface PriceSnapshot {
  readonly tick: Tick;
  /** When the snapshot was taken, epoch ms. */
  readonly snapTs: number;
}

const epochSecondsWire = z
  .string()
  .regex(/^\d+(\.\d{1,3})?$/, 'expected epoch seconds')
  .transform((s) => Math.round(Number(s) * 1000));

export const priceCodec: Codec<PriceSnapshot> = flatCodec<PriceSnapshot>({
  name: 'price snapshot',
  schemaVersions: [PRICE_SCHEMA_VERSION],
  schema: z
    .object({
      schema_version: z.literal(PRICE_SCHEMA_VERSION),
      symbol: z.string().min(1).max(40),
      instrument_key: z.string().regex(INSTRUMENT_KEY_RE).max(100),
      bid: decimal,
      ask: decimal,
      mid: decimal,
      tick_ts: epochSecondsWire,
      snap_ts: epochSecondsWire,
    })
    .loose()
    .transform((w) => ({
      tick: { instrumentKey: w.instrument_key, symbol: w.symbol, bid: w.bid, ask: w.ask, tsMs: w.tick_ts },
      snapTs: w.snap_ts,
    })),
  toFields: ({ tick, snapTs }) => ({
    schema_version: PRICE_SCHEMA_VERSION,
    symbol: tick.symbol,
    instrument_key: tick.instrumentKey,
    bid: formatNumber(tick.bid),
    ask: formatNumber(tick.ask),
    mid: formatNumber((tick.bid + tick.ask) / 2),
    tick_ts: epochSeconds(tick.tsMs),
    snap_ts: epochSeconds(snapTs),
  }),
});
