/**
 * Bybit v5 public WebSocket frames: zod schemas and their reading into the kit's `VenueMessage`
 * (docs/venues/bybit.md lists the documented shapes). Parsing never throws: anything that is not a
 * well-formed 1m kline, level-1 order book, heartbeat answer or subscribe reply is `invalid` with a
 * reason for people.
 */
import { z } from 'zod';
import { candleValuesProblem, MINUTE_MS } from '../../kit/candle-values.js';
import type { CandleValues, VenueMessage } from '../../kit/venue.js';

export { MINUTE_MS };
/** Kline start times before this are not Bybit data (v5 launched in 2023; spot history goes back to 2018). */
const MIN_TS = Date.UTC(2017, 0, 1);
/** ... nor after this. */
const MAX_TS = Date.UTC(2100, 0, 1);
/** Longest reason quoted from a server message, characters. */
const QUOTE_MAX = 200;

/** A decimal as Bybit writes it: `"16649.5"`, `"0"`. No sign, no exponent. */
export const decimalString = z
  .string()
  .regex(/^\d{1,20}(\.\d{1,20})?$/, 'expected a decimal string')
  .transform(Number);
export const priceString = decimalString.refine((n) => n > 0, 'expected a positive price');
export const epochMs = z.int().min(MIN_TS, 'timestamp out of range').max(MAX_TS, 'timestamp out of range');
/** Bybit's symbols: upper-case letters and digits, USDT/USDC futures with a `-DDMMMYY` expiry. */
export const BYBIT_SYMBOL_RE = /^[A-Z0-9]{2,30}(-[0-9]{2}[A-Z]{3}[0-9]{2})?$/;
const symbol = z.string().regex(BYBIT_SYMBOL_RE, 'expected a Bybit symbol');

export const KLINE_PREFIX = 'kline.1.';
export const BOOK_PREFIX = 'orderbook.1.';

/** The topics of one instrument: its 1m klines and its level-1 order book (top of book). */
export function topicsOf(sym: string): readonly [string, string] {
  return [`${KLINE_PREFIX}${sym}`, `${BOOK_PREFIX}${sym}`];
}

const klineEntry = z
  .object({
    start: epochMs,
    end: epochMs,
    interval: z.string(),
    open: priceString,
    close: priceString,
    high: priceString,
    low: priceString,
    volume: decimalString,
    turnover: decimalString,
    confirm: z.boolean(),
    timestamp: epochMs.optional(),
  })
  .loose();

const klineFrame = z
  .object({
    topic: z.string(),
    type: z.string().optional(),
    ts: epochMs.optional(),
    data: z.array(z.unknown()).min(1).max(10),
  })
  .loose();

const level = z.tuple([priceString, decimalString]);
const bookFrame = z
  .object({
    topic: z.string(),
    type: z.enum(['snapshot', 'delta']),
    ts: epochMs.optional(),
    cts: epochMs.optional(),
    data: z.object({ s: symbol, b: z.array(level).max(50), a: z.array(level).max(50) }).loose(),
  })
  .loose();

/** The reply to an `op` request: subscribe, unsubscribe, ping (spot and linear answer ping with `op: ping`). */
const opReply = z
  .object({
    op: z.string(),
    success: z.boolean().optional(),
    ret_msg: z.string().optional(),
    req_id: z.string().optional(),
    conn_id: z.string().optional(),
    args: z.array(z.unknown()).optional(),
  })
  .loose();

function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

function quote(s: string): string {
  return JSON.stringify(s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}...` : s);
}

/** One entry of a kline frame, checked; `volume` is in the base coin (USDT contracts: 1 contract = 1 coin). */
function readKline(sym: string, entry: unknown): VenueMessage {
  const r = klineEntry.safeParse(entry);
  if (!r.success) return { type: 'invalid', reason: `kline: ${issues(r.error)}` };
  const k = r.data;
  if (k.interval !== '1')
    return { type: 'invalid', reason: `kline: interval ${quote(k.interval)}, expected "1"` };
  // `end` is start + 59999 once closed; while open Bybit may give the current time instead.
  if (k.end <= k.start || k.end >= k.start + MINUTE_MS) {
    return { type: 'invalid', reason: `kline: end ${k.end} is not within the minute starting ${k.start}` };
  }
  const values: CandleValues = {
    openTime: k.start,
    open: k.open,
    high: k.high,
    low: k.low,
    close: k.close,
    volumeBase: k.volume,
    volumeQuote: k.turnover,
  };
  const problem = candleValuesProblem(values);
  if (problem) return { type: 'invalid', reason: `kline: ${problem}` };
  return { type: 'candle', symbol: sym, closed: k.confirm, values };
}

function parseKlineFrame(json: unknown, sym: string): VenueMessage {
  const r = klineFrame.safeParse(json);
  if (!r.success) return { type: 'invalid', reason: `kline: ${issues(r.error)}` };
  // One frame may carry more than one entry; the closing one is the one that matters (docs/venues/bybit.md).
  const parsed = r.data.data.map((e) => readKline(sym, e));
  const bad = parsed.find((m) => m.type === 'invalid');
  if (bad) return bad;
  const closing = parsed.find((m) => m.type === 'candle' && m.closed);
  return closing ?? parsed[parsed.length - 1] ?? { type: 'invalid', reason: 'kline: no entry' };
}

/** Best level of one side: the first with a non-zero size (a zero size deletes the level). */
function best(levels: readonly (readonly [number, number])[]): number | null {
  for (const [price, size] of levels) if (size > 0) return price;
  return null;
}

function parseBookFrame(json: unknown, sym: string): VenueMessage {
  const r = bookFrame.safeParse(json);
  if (!r.success) return { type: 'invalid', reason: `orderbook: ${issues(r.error)}` };
  const d = r.data;
  if (d.data.s !== sym)
    return { type: 'invalid', reason: `orderbook: symbol ${d.data.s} on topic ${d.topic}` };
  const bid = best(d.data.b);
  const ask = best(d.data.a);
  // A delta that changes one side only (or a book with one side empty) is no full top of book: the
  // adapter keeps no state to merge it with, and level 1 sends a snapshot again soon (docs/venues/bybit.md).
  if (bid === null || ask === null) return { type: 'ack' };
  if (bid >= ask) return { type: 'invalid', reason: `orderbook: bid ${bid} not below ask ${ask}` };
  return { type: 'quote', symbol: sym, bid, ask, exchangeTsMs: d.cts ?? d.ts ?? null };
}

/** What a failed subscribe names: topics in its `ret_msg`, e.g. `Invalid symbol :[kline.1.FOOUSDT]`. */
export function topicsNamed(retMsg: string): string[] {
  const found = retMsg.match(/(kline\.1|orderbook\.1)\.[A-Z0-9-]{2,40}/g) ?? [];
  return [...new Set(found)];
}

/** The symbol of one of our topics, or null. */
export function symbolOfTopic(topic: string): string | null {
  for (const prefix of [KLINE_PREFIX, BOOK_PREFIX]) {
    if (topic.startsWith(prefix)) {
      const s = topic.slice(prefix.length);
      return BYBIT_SYMBOL_RE.test(s) ? s : null;
    }
  }
  return null;
}

/**
 * A subscribe refused: the symbols whose topics it names, or, when it names none, the symbols of the
 * request it answers (`subscribeSymbols(req_id)`), when that request carried exactly one symbol.
 */
function parseSubscribeFailure(
  retMsg: string,
  reqId: string | undefined,
  subscribeSymbols: (reqId: string) => readonly string[],
): VenueMessage {
  const named = [
    ...new Set(
      topicsNamed(retMsg)
        .map(symbolOfTopic)
        .filter((s): s is string => s !== null),
    ),
  ];
  // More than one symbol named in one reply: the kit takes one per message, so the first is reported
  // and the others stay unserved until the next start (docs/venues/bybit.md).
  const symbols = named.length > 0 ? named : reqId === undefined ? [] : subscribeSymbols(reqId);
  const first = symbols[0];
  if (first !== undefined && (named.length > 0 || symbols.length === 1)) {
    return { type: 'rejected', symbol: first, reason: `subscribe refused: ${quote(retMsg)}` };
  }
  return { type: 'invalid', reason: `subscribe refused: ${quote(retMsg)}` };
}

function parseOpReply(json: unknown, subscribeSymbols: (reqId: string) => readonly string[]): VenueMessage {
  const r = opReply.safeParse(json);
  if (!r.success) return { type: 'invalid', reason: `reply: ${issues(r.error)}` };
  const m = r.data;
  // Spot: {success, ret_msg:"pong", conn_id, op:"ping"}; linear adds req_id:""; option/spread answer
  // {args:[ts], op:"pong"}.
  if ((m.op === 'ping' && m.ret_msg === 'pong') || m.op === 'pong') return { type: 'pong' };
  if (m.op === 'subscribe' || m.op === 'unsubscribe') {
    if (m.success === true) return { type: 'ack' };
    if (m.success === false && m.op === 'subscribe') {
      return parseSubscribeFailure(m.ret_msg ?? '', m.req_id, subscribeSymbols);
    }
    if (m.success === false)
      return { type: 'invalid', reason: `unsubscribe refused: ${quote(m.ret_msg ?? '')}` };
  }
  if (m.success === false) return { type: 'invalid', reason: `request refused: ${quote(m.ret_msg ?? '')}` };
  return { type: 'invalid', reason: `unexpected reply to op ${quote(m.op)}` };
}

/**
 * Parse one text frame of a public spot or linear socket. `subscribeSymbols` gives the symbols of the
 * subscribe request with that `req_id` (for a refusal that names no topic).
 */
export function parseBybitMessage(
  text: string,
  subscribeSymbols: (reqId: string) => readonly string[] = () => [],
): VenueMessage {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { type: 'invalid', reason: 'not JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { type: 'invalid', reason: 'not a JSON object' };
  }
  if ('topic' in json) {
    const topic = json.topic;
    if (typeof topic !== 'string') return { type: 'invalid', reason: 'topic is not a string' };
    const sym = symbolOfTopic(topic);
    if (sym === null) return { type: 'invalid', reason: `unexpected topic ${quote(topic)}` };
    return topic.startsWith(KLINE_PREFIX) ? parseKlineFrame(json, sym) : parseBookFrame(json, sym);
  }
  if ('op' in json) return parseOpReply(json, subscribeSymbols);
  return { type: 'invalid', reason: 'neither a topic message nor a reply' };
}
