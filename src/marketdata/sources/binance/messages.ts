/**
 * Binance WebSocket messages: zod schemas and parsing of combined-stream frames
 * (`{"stream":"<name>","data":<payload>}`) into a small union, and that union as the kit's
 * `VenueMessage` (`binanceVenueMessage`). Parsing never throws: anything that is not a well-formed
 * kline, book ticker, server notice or control reply comes back as `invalid` with a reason for people.
 */
import { z } from 'zod';
import { candleValuesProblem, MINUTE_MS } from '../../kit/candle-values.js';
import type { CandleValues, VenueMessage } from '../../kit/venue.js';
/** Kline open times before this are not Binance data. */
const MIN_TS = Date.UTC(2017, 0, 1);
/** ... nor after this. */
const MAX_TS = Date.UTC(2100, 0, 1);

/** The numbers of one 1m kline, from the socket or from REST. Times are epoch ms as Binance gives them. */
export interface KlineValues {
  readonly openTime: number;
  /** Binance's close time: `openTime + 59999`. */
  readonly closeTime: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  /** Base asset volume. */
  readonly volume: number;
  /** Quote asset volume. */
  readonly quoteVolume: number;
}

export type BinanceMessage =
  /** A kline update; `closed` is Binance's `x`: only closed klines become candles. */
  | {
      readonly type: 'kline';
      readonly stream: string;
      readonly symbol: string;
      readonly closed: boolean;
      readonly kline: KlineValues;
    }
  /** Best bid/ask. `exchangeTsMs`: futures' transaction time `T` (or event time `E`); spot sends none. */
  | {
      readonly type: 'bookTicker';
      readonly stream: string;
      readonly symbol: string;
      readonly bid: number;
      readonly ask: number;
      readonly exchangeTsMs: number | null;
    }
  /** The server is about to shut the connection: reconnect now. */
  | { readonly type: 'serverShutdown'; readonly eventTime: number | null }
  /** Reply to a control request (SUBSCRIBE etc.). */
  | { readonly type: 'response'; readonly id: string | number | null }
  | { readonly type: 'invalid'; readonly reason: string };

/** A decimal as Binance writes it: `"0.00100000"`. No sign, no exponent. */
export const decimalString = z
  .string()
  .regex(/^\d{1,20}(\.\d{1,20})?$/, 'expected a decimal string')
  .transform(Number);
export const priceString = decimalString.refine((n) => n > 0, 'expected a positive price');
export const epochMs = z.int().min(MIN_TS, 'timestamp out of range').max(MAX_TS, 'timestamp out of range');
const symbol = z.string().regex(/^[A-Z0-9_]{2,40}$/, 'expected an upper-case symbol');

const klinePayload = z
  .object({
    e: z.literal('kline'),
    E: epochMs.optional(),
    s: symbol,
    k: z
      .object({
        t: epochMs,
        T: epochMs,
        s: symbol,
        i: z.string(),
        o: priceString,
        c: priceString,
        h: priceString,
        l: priceString,
        v: decimalString,
        q: decimalString,
        x: z.boolean(),
      })
      .loose(),
  })
  .loose();

const bookTickerPayload = z
  .object({
    e: z.literal('bookTicker').optional(),
    u: z.int().nonnegative(),
    s: symbol,
    b: priceString,
    B: decimalString,
    a: priceString,
    A: decimalString,
    E: epochMs.optional(),
    T: epochMs.optional(),
  })
  .loose();

const shutdownPayload = z.object({ e: z.literal('serverShutdown'), E: z.int().optional() }).loose();

const envelope = z.object({ stream: z.string().min(1).max(200), data: z.unknown() });
const response = z.object({
  result: z.unknown(),
  id: z.union([z.string(), z.number(), z.null()]),
});
const errorReply = z.object({ code: z.number(), msg: z.string() }).loose();

function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/** A kline's numbers as the kit's candle values. */
export function klineValues(k: KlineValues): CandleValues {
  return {
    openTime: k.openTime,
    open: k.open,
    high: k.high,
    low: k.low,
    close: k.close,
    volumeBase: k.volume,
    volumeQuote: k.quoteVolume,
  };
}

/**
 * Rules a 1m kline must satisfy beyond its field types: the kit's (`candleValuesProblem`: a
 * minute-aligned open, high/low enclosing open/close, volumes not negative) and Binance's close time
 * (open + 59999). Returns the problem or null.
 */
export function klineProblem(k: KlineValues): string | null {
  if (k.openTime % MINUTE_MS === 0 && k.closeTime !== k.openTime + MINUTE_MS - 1) {
    return `close time ${k.closeTime} is not open time + 59999 (${k.openTime + MINUTE_MS - 1})`;
  }
  return candleValuesProblem(klineValues(k));
}

function parseKline(stream: string, data: unknown): BinanceMessage {
  const r = klinePayload.safeParse(data);
  if (!r.success) return { type: 'invalid', reason: `kline: ${issues(r.error)}` };
  const d = r.data;
  if (d.k.s !== d.s) return { type: 'invalid', reason: `kline: symbol ${d.k.s} inside ${d.s}` };
  if (stream !== `${d.s.toLowerCase()}@kline_1m`) {
    return { type: 'invalid', reason: `kline: stream ${stream} does not carry ${d.s} 1m klines` };
  }
  if (d.k.i !== '1m') return { type: 'invalid', reason: `kline: interval ${d.k.i}, expected 1m` };
  const kline: KlineValues = {
    openTime: d.k.t,
    closeTime: d.k.T,
    open: d.k.o,
    high: d.k.h,
    low: d.k.l,
    close: d.k.c,
    volume: d.k.v,
    quoteVolume: d.k.q,
  };
  const problem = klineProblem(kline);
  if (problem) return { type: 'invalid', reason: `kline: ${problem}` };
  return { type: 'kline', stream, symbol: d.s, closed: d.k.x, kline };
}

function parseBookTicker(stream: string, data: unknown): BinanceMessage {
  const r = bookTickerPayload.safeParse(data);
  if (!r.success) return { type: 'invalid', reason: `bookTicker: ${issues(r.error)}` };
  const d = r.data;
  if (stream !== `${d.s.toLowerCase()}@bookTicker`) {
    return { type: 'invalid', reason: `bookTicker: stream ${stream} does not carry ${d.s}` };
  }
  return { type: 'bookTicker', stream, symbol: d.s, bid: d.b, ask: d.a, exchangeTsMs: d.T ?? d.E ?? null };
}

/** Parse one text frame of a combined-stream connection. */
export function parseBinanceMessage(text: string): BinanceMessage {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { type: 'invalid', reason: 'not JSON' };
  }
  const env = envelope.safeParse(json);
  if (env.success) {
    const { stream, data } = env.data;
    const shutdown = shutdownPayload.safeParse(data);
    if (shutdown.success) return { type: 'serverShutdown', eventTime: shutdown.data.E ?? null };
    if (stream.endsWith('@kline_1m')) return parseKline(stream, data);
    if (stream.endsWith('@bookTicker')) return parseBookTicker(stream, data);
    return { type: 'invalid', reason: `unexpected stream ${JSON.stringify(stream.slice(0, 60))}` };
  }
  // Not wrapped: a raw-stream server notice, a control reply or an error reply.
  const shutdown = shutdownPayload.safeParse(json);
  if (shutdown.success) return { type: 'serverShutdown', eventTime: shutdown.data.E ?? null };
  const error = errorReply.safeParse(json);
  if (error.success) return { type: 'invalid', reason: `server error ${error.data.code}: ${error.data.msg}` };
  const reply = response.safeParse(json);
  if (reply.success && typeof json === 'object' && json !== null && 'result' in json) {
    return { type: 'response', id: reply.data.id };
  }
  return { type: 'invalid', reason: `not a combined-stream message: ${issues(env.error)}` };
}

/** One text frame of a combined-stream connection as the kit reads it. */
export function binanceVenueMessage(text: string): VenueMessage {
  const m = parseBinanceMessage(text);
  switch (m.type) {
    case 'kline':
      return { type: 'candle', symbol: m.symbol, closed: m.closed, values: klineValues(m.kline) };
    case 'bookTicker':
      return { type: 'quote', symbol: m.symbol, bid: m.bid, ask: m.ask, exchangeTsMs: m.exchangeTsMs };
    case 'serverShutdown':
      return { type: 'reconnect', reason: 'serverShutdown' };
    case 'response':
      return { type: 'ack' };
    case 'invalid':
      return m;
  }
}
