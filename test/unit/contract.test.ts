import { InvalidArgumentError } from '../../src/util/errors.js';
import { describe, expect, it } from 'vitest';
import { DecodeError, SchemaVersionError } from '../../src/bus/errors.js';
import {
  CANDLE_FIELDS,
  candleCodec,
  candleId,
  formatNumber,
  priceCodec,
  PRICE_FIELDS,
} from '../../src/contracts/market-data.js';

/** The example entry of docs/contracts.md §6, verbatim. */
const SEED_EXAMPLE: Record<string, string> = {
  schema_version: '1',
  market_id: '1',
  symbol: 'BTCUSDT',
  instrument_key: 'binance:spot:BTCUSDT',
  ts_open: '2026-02-10T12:34:00.000Z',
  ts_close: '2026-02-10T12:35:00.000Z',
  open: '100.1',
  high: '101.2',
  low: '99.9',
  close: '100.8',
  volume_base: '12.34',
  volume_quote: '1234.5',
  source: 'ws',
  ingested_at: '2026-02-10T12:35:00.120Z',
  ingest_id: '00000000-0000-0000-0000-000000000001',
};

describe('candle contract v1', () => {
  it('decodes the seed example and encodes it back to the same fields, in the same order', () => {
    const env = candleCodec.decode(SEED_EXAMPLE);
    expect(env.candle).toMatchObject({
      instrumentKey: 'binance:spot:BTCUSDT',
      timeframe: '1m',
      open: 100.1,
      volumeQuote: 1234.5,
      origin: 'ws',
    });
    const fields = candleCodec.encode(env);
    expect(fields).toEqual(SEED_EXAMPLE);
    expect(Object.keys(fields)).toEqual([...CANDLE_FIELDS]);
    expect(candleId(env.candle)).toBe(`${Date.UTC(2026, 1, 10, 12, 34)}-0`);
  });

  it('writes an unknown quote volume as an empty string and reads it back as null', () => {
    const env = candleCodec.decode({ ...SEED_EXAMPLE, volume_quote: '' });
    expect(env.candle.volumeQuote).toBeNull();
    expect(candleCodec.encode(env)['volume_quote']).toBe('');
  });

  it('recognises 5m candles by their interval', () => {
    const env = candleCodec.decode({
      ...SEED_EXAMPLE,
      ts_open: '2026-02-10T12:30:00.000Z',
      ts_close: '2026-02-10T12:35:00.000Z',
    });
    expect(env.candle.timeframe).toBe('5m');
  });

  it.each([
    ['a non-numeric price', { close: 'abc' }, 'close'],
    ['a missing field', { ts_open: undefined }, 'ts_open'],
    ['a timestamp without milliseconds', { ts_open: '2026-02-10T12:34:00Z' }, 'ts_open'],
    ['an interval that is no timeframe', { ts_close: '2026-02-10T12:36:00.000Z' }, 'ts_close'],
    ['high below close', { high: '100' }, 'high'],
    ['a hostile instrument key', { instrument_key: 'binance:spot:BTC*' }, 'instrument_key'],
  ])('refuses %s, naming the field', (_name, patch, field) => {
    const bad = Object.fromEntries(
      Object.entries({ ...SEED_EXAMPLE, ...patch }).filter(
        (kv): kv is [string, string] => kv[1] !== undefined,
      ),
    );
    expect(() => candleCodec.decode(bad)).toThrow(DecodeError);
    expect(() => candleCodec.decode(bad)).toThrow(new RegExp(field));
  });

  it('refuses another schema version', () => {
    expect(() => candleCodec.decode({ ...SEED_EXAMPLE, schema_version: '2' })).toThrow(SchemaVersionError);
  });

  it('formats numbers without float noise or exponents', () => {
    expect(formatNumber(0.1 + 0.2)).toBe('0.3');
    expect(formatNumber(60123.45)).toBe('60123.45');
    expect(formatNumber(1e-7)).toBe('0.0000001');
    expect(formatNumber(12345678901234)).toBe('12345678901200');
    expect(() => formatNumber(Number.NaN)).toThrow(InvalidArgumentError);
  });
});

describe('price snapshot contract v1', () => {
  it('has the seed fields, epoch seconds with ms, mid between bid and ask', () => {
    const fields = priceCodec.encode({
      tick: {
        instrumentKey: 'sim:fx:XAUUSD',
        symbol: 'XAUUSD',
        bid: 4209.62,
        ask: 4210.02,
        tsMs: 1764866660000,
      },
      snapTs: 1764866661000,
    });
    expect(fields).toEqual({
      schema_version: '1',
      symbol: 'XAUUSD',
      instrument_key: 'sim:fx:XAUUSD',
      bid: '4209.62',
      ask: '4210.02',
      mid: '4209.82',
      tick_ts: '1764866660.000',
      snap_ts: '1764866661.000',
    });
    expect(Object.keys(fields)).toEqual([...PRICE_FIELDS]);
    expect(priceCodec.decode(fields).tick.tsMs).toBe(1764866660000);
  });
});
