/**
 * Commands and replies on the wire: the bus envelope (`codec.ts`: schema_version, type, id, source,
 * time, correlation_id, payload as JSON) plus a few flat fields of the command layer.
 *
 * Command entry on `mgmt:<service>:commands`:
 *   envelope fields, type = the command type (`backtest.run`), correlation_id = the requester's (default
 *   the command id), and
 *   `reply_to`   the callback stream: a catalog results stream `<name>:mgmt:results` (default the
 *                service's own); anything else is refused, so a command can never make a service
 *                write to other keys;
 *   `expires_at` ISO-8601 time after which the command is answered `COMMAND_EXPIRED` instead of run
 *                (a requester that gave up must not get a late side effect), or empty for never.
 *
 * Reply entry on the callback stream:
 *   envelope fields, type `<command type>.result` (payload: the command's result schema) or
 *   `<command type>.error` (payload `{code, message, issues?}`), correlation_id = the command's, and
 *   `command_id`  the id of the command answered.
 */
import { describeStream } from '../contracts/catalog.js';
import {
  envelopeFields,
  envelopeCodec,
  jsonValue,
  makeEnvelope,
  type Envelope,
  type Fields,
  type JsonValue,
} from '../bus/codec.js';
import { DecodeError } from '../bus/errors.js';

const anyEnvelope = envelopeCodec(jsonValue);

/** A command as read from the stream, before its payload is checked against its type's schema. */
export interface IncomingCommand {
  readonly envelope: Envelope<JsonValue>;
  readonly replyTo: string;
  /** Epoch ms, or null for never. */
  readonly expiresAt: number | null;
}

export function isResultsStream(name: string): boolean {
  return describeStream(name)?.kind === 'service-results';
}

/** Envelope fields plus `reply_to` and `expires_at`. The payload must already be valid for its type. */
export function encodeCommand(
  env: Envelope<unknown>,
  replyTo: string,
  expiresAt: number | null,
): Record<string, string> {
  return {
    ...envelopeFields(env),
    reply_to: replyTo,
    expires_at: expiresAt === null ? '' : new Date(expiresAt).toISOString(),
  };
}

/**
 * Read a command entry; throws DecodeError (the entry is dead-lettered) for a bad envelope, a payload
 * that is not JSON, a callback stream that is not a results stream, or a bad `expires_at`.
 * `defaultReplyTo` serves commands written without `reply_to` (the first strategy commands).
 */
export function decodeCommand(fields: Fields, defaultReplyTo: string): IncomingCommand {
  const envelope = anyEnvelope.decode(fields);
  const replyTo = fields['reply_to'] || defaultReplyTo;
  if (!isResultsStream(replyTo)) {
    throw new DecodeError(`reply_to ${JSON.stringify(replyTo.slice(0, 120))} is not a results stream`, [
      'reply_to: expected <service>:mgmt:results',
    ]);
  }
  let expiresAt: number | null = null;
  if (fields['expires_at']) {
    expiresAt = Date.parse(fields['expires_at']);
    if (!Number.isFinite(expiresAt))
      throw new DecodeError('invalid expires_at', ['expires_at: expected an ISO-8601 time or empty']);
  }
  return { envelope, replyTo, expiresAt };
}

/** The correlation id a reply carries: the command's, or its id when it came without one. */
export function replyCorrelation(cmd: Envelope<unknown>): string {
  return cmd.correlationId || cmd.id;
}

export function encodeReply(
  cmd: Envelope<unknown>,
  kind: 'result' | 'error',
  source: string,
  payload: unknown,
): Record<string, string> {
  const env = makeEnvelope(`${cmd.type}.${kind}`, source, payload, { correlationId: replyCorrelation(cmd) });
  return {
    ...envelopeFields(env),
    command_id: cmd.id,
  };
}

/** A reply as read from a callback stream. */
export interface IncomingReply {
  readonly kind: 'result' | 'error' | 'other';
  /** The answered command's id (`command_id`, else the correlation id of replies without it). */
  readonly commandId: string;
  readonly envelope: Envelope<JsonValue>;
}

/** Read a callback-stream entry; null for entries that are not envelopes (never throws). */
export function decodeReply(fields: Fields): IncomingReply | null {
  let envelope: Envelope<JsonValue>;
  try {
    envelope = anyEnvelope.decode(fields);
  } catch {
    return null;
  }
  const kind = envelope.type.endsWith('.result')
    ? 'result'
    : envelope.type.endsWith('.error')
      ? 'error'
      : 'other';
  return { kind, commandId: fields['command_id'] || envelope.correlationId, envelope };
}
