/**
 * OKX v5 WebSocket frames (docs/venues/okx.md): zod schemas and parsing into the kit's `VenueMessage`.
 * A frame is the text `pong`, an event reply (`subscribe`, `error`, `notice`, `channel-conn-count`) or a
 * push `{"arg":{"channel","instId"},"data":[...]}` of `candle1m` (business socket) or `tickers` (public
 * socket). Parsing never throws: anything else comes back as `invalid` with a reason for people.
 */
import { z } from 'zod';
import type { CandleValues, SocketPlan, VenueMessage } from '../../kit/venue.js';
import { candleValuesProblem } from '../../kit/candle-values.js';
import type { OkxInstrument, OkxMarket } from './instruments.js';

/** The candle channel subscribed: 1-minute candles. */
export const CANDLE_CHANNEL = 'candle1m';
/** The top-of-book channel subscribed (why `tickers` and not `bbo-tbt`: docs/venues/okx.md). */
export const QUOTE_CHANNEL = 'tickers';
/** `notice` code: "The connection will soon be closed for a service upgrade. Please reconnect." */
export const NOTICE_SERVICE_UPGRADE = '64008';

/** Candle open times before this are not OKX data. */
const MIN_TS = Date.UTC(2017, 0, 1);
/** ... nor after this. */
const MAX_TS = Date.UTC(2100, 0, 1);
/** Longest piece of a frame quoted in a reason, characters. */
const QUOTE_MAX = 200;

/** A decimal as OKX writes it: `"8533.02"`, `"0"`. No sign, no exponent. */
export const decimalString = z
  .string()
  .regex(/^\d{1,20}(\.\d{1,20})?$/, 'expected a decimal string')
  .transform(Number);
export const priceString = decimalString.refine((n) => n > 0, 'expected a positive price');
/** Epoch ms as OKX writes it: a string of digits. */
export const epochMsString = z
  .string()
  .regex(/^\d{1,15}$/, 'expected epoch milliseconds')
  .transform(Number)
  .refine((n) => n >= MIN_TS && n <= MAX_TS, 'timestamp out of range');
/** An instId as OKX writes it: `BTC-USDT`, `BTC-USDT-SWAP`, `BTC-USD_UM-SWAP`. */
export const instIdString = z
  .string()
  .regex(/^[A-Z0-9_]{1,20}(-[A-Z0-9_]{1,20}){1,3}$/, 'expected an instId');

/**
 * One candle as OKX lays it out on the socket and over REST:
 * `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`. `confirm` is `"0"` (open) or `"1"` (closed).
 */
export const candleRow = z.tuple(
  [
    epochMsString,
    priceString,
    priceString,
    priceString,
    priceString,
    decimalString,
    decimalString,
    decimalString,
    z.enum(['0', '1']),
  ],
  z.unknown(),
);

export type CandleRowResult =
  | { readonly ok: true; readonly values: CandleValues; readonly closed: boolean }
  | { readonly ok: false; readonly reason: string };

export function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/**
 * One candle row of `market`. OKX's volume columns differ by market: on SPOT `vol` is base currency and
 * `volCcy` quote currency; on SWAP `vol` is contracts, `volCcy` base currency. `volCcyQuote` is quote
 * currency on both. The contract's `volume_base` is base currency, so swaps take `volCcy`.
 */
export function parseCandleRow(row: unknown, market: OkxMarket): CandleRowResult {
  const r = candleRow.safeParse(row);
  if (!r.success) return { ok: false, reason: `candle row: ${issues(r.error)}` };
  const [openTime, open, high, low, close, vol, volCcy, volCcyQuote, confirm] = r.data;
  const values: CandleValues = {
    openTime,
    open,
    high,
    low,
    close,
    volumeBase: market === 'swap' ? volCcy : vol,
    volumeQuote: volCcyQuote,
  };
  const problem = candleValuesProblem(values);
  if (problem) return { ok: false, reason: `candle row: ${problem}` };
  return { ok: true, values, closed: confirm === '1' };
}

const arg = z.object({ channel: z.string().max(64), instId: instIdString }).loose();

const push = z.object({ arg, data: z.array(z.unknown()) }).loose();

const tickerData = z
  .object({
    instId: instIdString,
    bidPx: z.string(),
    askPx: z.string(),
    ts: epochMsString.optional(),
  })
  .loose();

const eventReply = z
  .object({
    event: z.string().max(64),
    code: z.string().max(16).optional(),
    msg: z.string().max(2000).optional(),
    arg: z
      .object({ channel: z.string().max(64).optional(), instId: z.string().max(64).optional() })
      .optional(),
  })
  .loose();

function quote(text: string): string {
  return JSON.stringify(text.length > QUOTE_MAX ? `${text.slice(0, QUOTE_MAX)}...` : text);
}

function instrumentOf(socket: SocketPlan<OkxInstrument>, instId: string): OkxInstrument | undefined {
  return socket.instruments.find((i) => i.symbol === instId);
}

/**
 * An `error` reply names the refused instrument in `arg` when it echoes one, otherwise in its text:
 * `Wrong URL or channel:candle1m,instId:FOO-USDT doesn't exist...` (code 60018).
 */
function rejectedInstId(reply: z.infer<typeof eventReply>): string | null {
  if (reply.arg?.instId) return reply.arg.instId;
  const m = /instId:([A-Z0-9_-]{1,64})/.exec(reply.msg ?? '');
  return m?.[1] ?? null;
}

function parseEvent(reply: z.infer<typeof eventReply>, socket: SocketPlan<OkxInstrument>): VenueMessage {
  const code = reply.code ?? '';
  const text = `${code ? `${code} ` : ''}${reply.msg ?? ''}`.trim();
  switch (reply.event) {
    case 'subscribe':
    case 'unsubscribe':
    case 'channel-conn-count':
      return { type: 'ack' };
    case 'notice':
      // 64008 comes 60 s before a service upgrade closes the connection; other notices need nothing.
      return code === NOTICE_SERVICE_UPGRADE
        ? { type: 'reconnect', reason: `notice ${text}` }
        : { type: 'ack' };
    case 'error': {
      const instId = rejectedInstId(reply);
      if (instId !== null && instrumentOf(socket, instId)) {
        return { type: 'rejected', symbol: instId, reason: `OKX error ${text}` };
      }
      return { type: 'invalid', reason: `OKX error ${text}` };
    }
    default:
      return { type: 'invalid', reason: `unexpected event ${quote(reply.event)}` };
  }
}

function parseCandlePush(
  instId: string,
  data: readonly unknown[],
  socket: SocketPlan<OkxInstrument>,
): VenueMessage {
  if (!socket.carriesCandles) return { type: 'invalid', reason: `candle push on ${socket.label}` };
  const instrument = instrumentOf(socket, instId);
  if (!instrument)
    return { type: 'invalid', reason: `candle push of ${instId}, not subscribed on ${socket.label}` };
  // OKX pushes one candle per frame.
  if (data.length !== 1)
    return { type: 'invalid', reason: `candle push with ${data.length} rows, expected 1` };
  const row = parseCandleRow(data[0], instrument.market);
  if (!row.ok) return { type: 'invalid', reason: row.reason };
  return { type: 'candle', symbol: instId, closed: row.closed, values: row.values };
}

function parseTickerPush(
  instId: string,
  data: readonly unknown[],
  socket: SocketPlan<OkxInstrument>,
): VenueMessage {
  if (!socket.carriesQuotes) return { type: 'invalid', reason: `tickers push on ${socket.label}` };
  if (!instrumentOf(socket, instId)) {
    return { type: 'invalid', reason: `tickers push of ${instId}, not subscribed on ${socket.label}` };
  }
  if (data.length !== 1)
    return { type: 'invalid', reason: `tickers push with ${data.length} rows, expected 1` };
  const r = tickerData.safeParse(data[0]);
  if (!r.success) return { type: 'invalid', reason: `tickers: ${issues(r.error)}` };
  if (r.data.instId !== instId)
    return { type: 'invalid', reason: `tickers: ${r.data.instId} inside ${instId}` };
  // OKX sends "" for a side with no orders; such an update has no bid/ask to report.
  const bid = priceString.safeParse(r.data.bidPx);
  const ask = priceString.safeParse(r.data.askPx);
  if (!bid.success || !ask.success) {
    return {
      type: 'invalid',
      reason: `tickers: no bid/ask (bidPx ${quote(r.data.bidPx)}, askPx ${quote(r.data.askPx)})`,
    };
  }
  return { type: 'quote', symbol: instId, bid: bid.data, ask: ask.data, exchangeTsMs: r.data.ts ?? null };
}

/** Parse one text frame that came on `socket`. */
export function parseOkxMessage(text: string, socket: SocketPlan<OkxInstrument>): VenueMessage {
  if (text === 'pong') return { type: 'pong' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { type: 'invalid', reason: `not JSON: ${quote(text)}` };
  }
  const event = eventReply.safeParse(json);
  if (event.success) return parseEvent(event.data, socket);
  const p = push.safeParse(json);
  if (!p.success) return { type: 'invalid', reason: `not an OKX push or event: ${issues(p.error)}` };
  const { channel, instId } = p.data.arg;
  if (channel === CANDLE_CHANNEL) return parseCandlePush(instId, p.data.data, socket);
  if (channel === QUOTE_CHANNEL) return parseTickerPush(instId, p.data.data, socket);
  return { type: 'invalid', reason: `unexpected channel ${quote(channel)}` };
}
