import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DecodeError, SchemaVersionError } from '../../src/bus/errors.js';
import { envelopeCodec, flatCodec, makeEnvelope, type JsonValue } from '../../src/bus/codec.js';

describe('envelope codec', () => {
  const payload = z.object({
    strategy: z.string(),
    config: z.object({
      params: z.object({ fast: z.number(), slow: z.number() }),
      tags: z.array(z.string()),
      note: z.string().nullable(),
    }),
  });
  const codec = envelopeCodec(payload);

  it('round-trips nested payloads exactly (JSON inside one field)', () => {
    const e = makeEnvelope(
      'backtest.run',
      'api',
      { strategy: 'ma', config: { params: { fast: 20, slow: 50 }, tags: ['a', 'ü', '"q"'], note: null } },
      { correlationId: 'c-1' },
    );
    const fields = codec.encode(e);
    expect(Object.values(fields).every((v) => typeof v === 'string')).toBe(true);
    expect(fields['schema_version']).toBe('1');
    expect(codec.decode(fields)).toEqual(e);
  });

  it('refuses an unknown schema_version, a non-JSON payload and a payload of the wrong shape', () => {
    const fields = codec.encode(
      makeEnvelope('t', 's', {
        strategy: 'x',
        config: { params: { fast: 1, slow: 2 }, tags: [], note: null },
      }),
    );
    expect(() => codec.decode({ ...fields, schema_version: '2' })).toThrow(SchemaVersionError);
    expect(() => codec.decode({ ...fields, payload: '{not json' })).toThrow(DecodeError);
    expect(() => codec.decode({ ...fields, payload: '{"strategy":1}' })).toThrow(/config/);
    expect(() => codec.decode({ ...fields, time: 'yesterday' })).toThrow(/time/);
  });

  it('refuses to encode a payload its schema rejects', () => {
    const loose = envelopeCodec(z.object({ n: z.number() }) as z.ZodType<JsonValue>);
    expect(() => loose.encode(makeEnvelope('t', 's', { n: 'x' }))).toThrow(DecodeError);
  });
});

describe('flat codec', () => {
  const codec = flatCodec({
    name: 'price',
    schemaVersions: ['1'],
    schema: z.object({
      schema_version: z.literal('1'),
      bid: z
        .string()
        .regex(/^\d+(\.\d+)?$/)
        .transform(Number),
    }),
    toFields: (v: { schema_version: '1'; bid: number }) => ({
      schema_version: v.schema_version,
      bid: String(v.bid),
    }),
  });

  it('decodes and encodes', () => {
    expect(codec.decode({ schema_version: '1', bid: '1.5' })).toEqual({ schema_version: '1', bid: 1.5 });
    expect(codec.encode({ schema_version: '1', bid: 2 })).toEqual({ schema_version: '1', bid: '2' });
  });

  it('names the field that is wrong', () => {
    expect(() => codec.decode({ schema_version: '1', bid: 'abc' })).toThrow(/bid/);
    expect(() => codec.decode({ bid: '1' })).toThrow(/schema_version/);
  });
});
