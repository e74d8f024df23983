/**
 * The live WebSocket protocol (`/api/v1/live/ws`), JSON text messages.
 *
 * Client -> server:
 *
 *     {"op":"subscribe","channel":"candles","instrument":"binance:spot:BTCUSDT","timeframe":"1m","from":"<id>"}
 *     {"op":"subscribe","channel":"prices","instrument":"<key>"}
 *     {"op":"subscribe","channel":"status","source":"simulated"}
 *     {"op":"subscribe","channel":"events"}            // the signed-in user's own stream
 *     {"op":"subscribe","channel":"metrics"}
 *     {"op":"unsubscribe", ...same channel and keys...}
 *     {"op":"ping"} | {"op":"pong"}
 *
 * `from` (optional): the last ID the client has seen; the server sends every entry after it, then live
 * ones. `"0"` = from the oldest kept entry; absent or `"$"` = only new entries. `id` (optional, string or
 * number) is echoed in the answer. Unknown fields are refused: a client cannot name a stream or a user.
 *
 * Server -> client: see {@link ServerMessage}; data messages are `{"channel","stream","id","fields"}`.
 */
import { z } from 'zod';
import { streams } from '../../contracts/catalog.js';
import { isStreamId, STREAM_ID_EXPECTED } from '../../bus/stream-id.js';
import { InvalidKeyError, MarketbusError, type ErrorCode } from '../../util/errors.js';

export const CHANNELS = ['candles', 'prices', 'status', 'events', 'metrics'] as const;
export type Channel = (typeof CHANNELS)[number];

/** The registry codes a live client is answered with (`{"op":"error","code":...}`, in lower case). */
export type LiveErrorCode = Extract<
  ErrorCode,
  | 'BAD_JSON'
  | 'BAD_REQUEST'
  | 'UNKNOWN_OP'
  | 'UNKNOWN_CHANNEL'
  | 'INVALID_INSTRUMENT'
  | 'INVALID_TIMEFRAME'
  | 'INVALID_SOURCE'
  | 'INVALID_FROM'
  | 'ALREADY_SUBSCRIBED'
  | 'NOT_SUBSCRIBED'
  | 'TOO_MANY_SUBSCRIPTIONS'
  | 'INSTRUMENT_NOT_SERVED'
  | 'SUBSCRIBE_RATE_LIMITED'
  | 'RELAY_FULL'
  | 'UNAVAILABLE'
>;

/** The `code` of an `op: error` message on the wire: the registry code in lower case (`bad_json`). */
export type LiveWireCode = Lowercase<LiveErrorCode>;

export function liveWireCode(code: LiveErrorCode): LiveWireCode {
  return code.toLowerCase() as LiveWireCode;
}

/** A client message the protocol refuses; `ref` is the message's `id`, echoed in the answer. */
export class ProtocolError extends MarketbusError {
  declare readonly code: LiveErrorCode;
  constructor(
    code: LiveErrorCode,
    message: string,
    readonly ref?: string | number,
  ) {
    super(code, message);
  }
}

export type Ref = string | number | undefined;

export type ClientRequest =
  | {
      readonly op: 'subscribe';
      readonly channel: Channel;
      readonly stream: string;
      /** The instrument key of a candles or prices subscription (which a feed must serve), else null. */
      readonly instrument: string | null;
      /** null: live only. */
      readonly from: string | null;
      readonly ref: Ref;
    }
  | { readonly op: 'unsubscribe'; readonly channel: Channel; readonly stream: string; readonly ref: Ref }
  | { readonly op: 'ping'; readonly ref: Ref }
  | { readonly op: 'pong'; readonly ref: Ref };

const Message = z.strictObject({
  op: z.string().max(32),
  channel: z.string().max(64).optional(),
  instrument: z.string().max(256).optional(),
  timeframe: z.string().max(16).optional(),
  source: z.string().max(128).optional(),
  from: z.string().max(64).optional(),
  id: z.union([z.string().max(64), z.number()]).optional(),
});

function isChannel(c: string): c is Channel {
  return (CHANNELS as readonly string[]).includes(c);
}

/** Parse one client message; throws ProtocolError with a code the client can act on. */
export function parseClientMessage(text: string, userId: string): ClientRequest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProtocolError('BAD_JSON', 'message is not JSON');
  }
  const r = Message.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where =
      issue?.code === 'unrecognized_keys'
        ? `unknown field ${issue.keys.join(', ')}`
        : `${(issue?.path ?? []).join('.') || 'message'}: ${issue?.message ?? 'invalid'}`;
    const ref = refOf(json);
    throw new ProtocolError('BAD_REQUEST', where, ref);
  }
  const m = r.data;
  const ref = m.id;
  if (m.op === 'ping' || m.op === 'pong') return { op: m.op, ref };
  if (m.op !== 'subscribe' && m.op !== 'unsubscribe')
    throw new ProtocolError('UNKNOWN_OP', `unknown op ${JSON.stringify(m.op)}`, ref);
  const channel = m.channel;
  if (channel === undefined) throw new ProtocolError('BAD_REQUEST', 'channel is required', ref);
  if (!isChannel(channel))
    throw new ProtocolError(
      'UNKNOWN_CHANNEL',
      `unknown channel ${JSON.stringify(channel.slice(0, 64))}; expected one of ${CHANNELS.join(', ')}`,
      ref,
    );
  const stream = streamOf(channel, m, userId, ref);
  if (m.op === 'unsubscribe') return { op: 'unsubscribe', channel, stream, ref };
  const instrument = channel === 'candles' || channel === 'prices' ? (m.instrument ?? null) : null;
  return { op: 'subscribe', channel, stream, instrument, from: fromOf(m.from, ref), ref };
}

function refOf(json: unknown): Ref {
  if (typeof json !== 'object' || json === null) return undefined;
  const id = (json as Record<string, unknown>)['id'];
  return (typeof id === 'string' && id.length <= 64) || typeof id === 'number' ? id : undefined;
}

function fromOf(from: string | undefined, ref: Ref): string | null {
  if (from === undefined || from === '$') return null;
  if (from === '0' || isStreamId(from)) return from;
  throw new ProtocolError('INVALID_FROM', `from: ${STREAM_ID_EXPECTED}, "0" or "$"`, ref);
}

function refuse(m: z.infer<typeof Message>, channel: Channel, fields: readonly string[], ref: Ref): void {
  for (const f of fields) {
    if (m[f as keyof typeof m] !== undefined)
      throw new ProtocolError('BAD_REQUEST', `${f} does not apply to channel ${channel}`, ref);
  }
}

/** The stream of a subscription, built by the catalog from validated parts (never from client text). */
function streamOf(channel: Channel, m: z.infer<typeof Message>, userId: string, ref: Ref): string {
  try {
    switch (channel) {
      case 'candles':
        refuse(m, channel, ['source'], ref);
        return streams.candles(m.timeframe ?? '1m', required(m.instrument, 'instrument', ref));
      case 'prices':
        refuse(m, channel, ['source', 'timeframe'], ref);
        return streams.prices(required(m.instrument, 'instrument', ref));
      case 'status':
        refuse(m, channel, ['instrument', 'timeframe'], ref);
        return streams.feedStatus(required(m.source, 'source', ref));
      case 'events':
        refuse(m, channel, ['instrument', 'timeframe', 'source'], ref);
        return streams.strategyEvents(userId);
      case 'metrics':
        refuse(m, channel, ['instrument', 'timeframe', 'source'], ref);
        return streams.strategyMetrics(userId);
    }
  } catch (err) {
    if (err instanceof InvalidKeyError) {
      const code: LiveErrorCode =
        err.part === 'instrument key'
          ? 'INVALID_INSTRUMENT'
          : err.part === 'timeframe'
            ? 'INVALID_TIMEFRAME'
            : err.part === 'source'
              ? 'INVALID_SOURCE'
              : 'BAD_REQUEST';
      throw new ProtocolError(code, err.message, ref);
    }
    throw err;
  }
}

function required(v: string | undefined, name: string, ref: Ref): string {
  if (v === undefined) throw new ProtocolError('BAD_REQUEST', `${name} is required`, ref);
  return v;
}

/** Messages the server sends. */
export type ServerMessage =
  | {
      readonly op: 'hello';
      readonly user_id: string;
      readonly channels: readonly Channel[];
      readonly heartbeat_ms: number;
    }
  | {
      readonly op: 'subscribed';
      readonly channel: Channel;
      readonly stream: string;
      readonly from: string | null;
      readonly id?: string | number;
    }
  | {
      readonly op: 'caught_up';
      readonly channel: Channel;
      readonly stream: string;
      readonly replayed: number;
    }
  | {
      readonly op: 'unsubscribed';
      readonly channel: Channel;
      readonly stream: string;
      readonly id?: string | number;
    }
  | {
      readonly op: 'error';
      readonly code: LiveWireCode;
      readonly message: string;
      readonly id?: string | number;
      /** With `subscribe_rate_limited`: when the next request is accepted, ms. */
      readonly retry_after_ms?: number;
    }
  | { readonly op: 'ping' | 'pong'; readonly ts: number }
  | {
      readonly channel: Channel;
      readonly stream: string;
      readonly id: string;
      readonly fields: Readonly<Record<string, string>>;
    };
