/**
 * Codecs between typed values and stream entry fields (always a flat map of strings on the wire).
 *
 * - `flatCodec`: the market contracts (candles, prices, status) are flat maps of strings that other
 *   languages read field by field; the codec validates with a zod schema on decode and encode.
 * - `envelopeCodec`: service messages (commands, results, strategy events) are an envelope of flat
 *   fields plus one JSON `payload`, so nested data round-trips exactly; what cannot be JSON is a type
 *   error at compile time and a DecodeError at run time, never a silently mangled entry.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { DecodeError, SchemaVersionError } from './errors.js';

export type Fields = Readonly<Record<string, string>>;

export interface Codec<T> {
  encode(value: T): Record<string, string>;
  /** Throws DecodeError (or SchemaVersionError) for fields that are not a valid T. */
  decode(fields: Fields): T;
}

export function zodIssues(err: z.ZodError): string[] {
  return err.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
}

/** Check `schema_version` before the schema runs, so an unknown version says so instead of listing field errors. */
export function checkSchemaVersion(fields: Fields, supported: readonly string[]): void {
  const v = fields['schema_version'];
  if (v === undefined) throw new DecodeError('missing schema_version', ['schema_version: required']);
  if (!supported.includes(v)) throw new SchemaVersionError(v, supported);
}

/**
 * A codec for flat all-string contracts. `schema` parses the wire fields into T (and may transform,
 * e.g. numeric strings to numbers); `toFields` writes T back.
 */
export function flatCodec<T>(opts: {
  readonly schema: z.ZodType<T>;
  readonly toFields: (value: T) => Record<string, string>;
  /** When set, `schema_version` must be one of these. */
  readonly schemaVersions?: readonly string[];
  readonly name: string;
}): Codec<T> {
  return {
    encode(value) {
      return opts.toFields(value);
    },
    decode(fields) {
      if (opts.schemaVersions) checkSchemaVersion(fields, opts.schemaVersions);
      const r = opts.schema.safeParse(fields);
      if (!r.success) throw new DecodeError(`invalid ${opts.name}`, zodIssues(r.error));
      return r.data;
    },
  };
}

export type JsonValue =
  string | number | boolean | null | readonly JsonValue[] | { readonly [k: string]: JsonValue };

/** Any JSON value (for payloads whose inner shape their consumers check). */
export const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);

/** An event or command as it travels on the bus. */
export interface Envelope<P> {
  /** What happened or is asked, e.g. `strategy.signal`, `backtest.run`. */
  readonly type: string;
  /** Unique ID of this message (UUID unless the producer derives a deterministic one). */
  readonly id: string;
  /** The service or component that produced it. */
  readonly source: string;
  /** ISO-8601 UTC with milliseconds. */
  readonly time: string;
  /** Ties a result to its request; empty string when none. */
  readonly correlationId: string;
  readonly payload: P;
}

export const ENVELOPE_SCHEMA_VERSION = '1';
const envelopeWire = z.object({
  schema_version: z.string(),
  type: z.string().min(1).max(200),
  id: z.string().min(1).max(200),
  source: z.string().min(1).max(200),
  time: z.iso.datetime({ offset: false }),
  correlation_id: z.string().max(200),
  payload: z.string(),
});

/** Build an envelope with a fresh UUID and the current time. */
export function makeEnvelope<P>(
  type: string,
  source: string,
  payload: P,
  opts: { id?: string; correlationId?: string; time?: Date } = {},
): Envelope<P> {
  return {
    type,
    source,
    payload,
    id: opts.id ?? randomUUID(),
    time: (opts.time ?? new Date()).toISOString(),
    correlationId: opts.correlationId ?? '',
  };
}

/**
 * The wire fields of an envelope, payload as JSON text, without checking the payload (callers that
 * add fields of their own, e.g. `reply_to`, spread these first).
 */
export function envelopeFields(e: Envelope<unknown>): Record<string, string> {
  return {
    schema_version: ENVELOPE_SCHEMA_VERSION,
    type: e.type,
    id: e.id,
    source: e.source,
    time: e.time,
    correlation_id: e.correlationId,
    payload: JSON.stringify(e.payload),
  };
}

/** A codec for envelopes whose payload `payloadSchema` validates (on encode and decode). */
export function envelopeCodec<P extends JsonValue>(payloadSchema: z.ZodType<P>): Codec<Envelope<P>> {
  return {
    encode(e) {
      const checked = payloadSchema.safeParse(e.payload);
      if (!checked.success)
        throw new DecodeError(`payload of ${e.type} does not match its schema`, zodIssues(checked.error));
      return envelopeFields({ ...e, payload: checked.data });
    },
    decode(fields) {
      checkSchemaVersion(fields, [ENVELOPE_SCHEMA_VERSION]);
      const wire = envelopeWire.safeParse(fields);
      if (!wire.success) throw new DecodeError('invalid envelope', zodIssues(wire.error));
      let raw: unknown;
      try {
        raw = JSON.parse(wire.data.payload);
      } catch (err) {
        throw new DecodeError('envelope payload is not JSON', [], { cause: err });
      }
      const payload = payloadSchema.safeParse(raw);
      if (!payload.success)
        throw new DecodeError(`invalid payload of ${wire.data.type}`, zodIssues(payload.error));
      return {
        type: wire.data.type,
        id: wire.data.id,
        source: wire.data.source,
        time: wire.data.time,
        correlationId: wire.data.correlation_id,
        payload: payload.data,
      };
    },
  };
}
