/**
 * The conformance suite every CandleStore adapter must pass (Watermill-style): call
 * `candleStoreConformance(name, factory)` from an adapter's test file. The factory returns a migrated,
 * empty-for-this-suite store; instrument keys are random per test so adapters may share a database.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CandleStore } from '../../src/history/store.js';
import { InvalidArgumentError } from '../../src/util/errors.js';
import type { Candle, CandleOrigin } from '../../src/contracts/candle.js';

const M = 60_000;
const T0 = Date.UTC(2026, 1, 10, 12, 0);

function key(): string {
  return `sim:spot:C${randomBytes(4).toString('hex').toUpperCase()}`;
}

export function candle(instrumentKey: string, i: number, origin: CandleOrigin = 'ws', base = 100): Candle {
  const tsOpen = T0 + i * M;
  const open = base + i * 0.5;
  return {
    instrumentKey,
    symbol: instrumentKey.split(':')[2] ?? '',
    marketId: 7,
    timeframe: '1m',
    tsOpen,
    tsClose: tsOpen + M,
    open,
    high: open + 1.25,
    low: open - 0.75,
    close: open + 0.125,
    volumeBase: 12.5 + i,
    volumeQuote: i % 3 === 0 ? null : 1234.5678 + i,
    origin,
  };
}

export function candleStoreConformance(name: string, factory: () => Promise<CandleStore>): void {
  describe(`CandleStore conformance: ${name}`, () => {
    let store: CandleStore;
    beforeAll(async () => {
      store = await factory();
      await store.migrate();
      await store.migrate(); // idempotent
    });
    afterAll(async () => {
      await store.close();
      await store.close(); // idempotent
    });

    it('round-trips candles exactly, ascending, within [from, to)', async () => {
      const k = key();
      const cs = [3, 0, 2, 1, 4].map((i) => candle(k, i));
      await store.insert(cs);
      expect(await store.range(k, T0, T0 + 5 * M)).toEqual([0, 1, 2, 3, 4].map((i) => candle(k, i)));
      expect((await store.range(k, T0 + M, T0 + 3 * M)).map((c) => c.tsOpen)).toEqual([T0 + M, T0 + 2 * M]);
      expect(await store.range(k, T0, T0 + 5 * M, 2)).toEqual([candle(k, 0), candle(k, 1)]);
      expect(await store.range(k, T0 + 10 * M, T0 + 20 * M)).toEqual([]);
    });

    it('keeps one row per (instrument, ts_open): the later write wins', async () => {
      const k = key();
      await store.insert([candle(k, 0), candle(k, 1)]);
      await store.insert([candle(k, 1, 'rest', 200), candle(k, 1, 'rest', 300)]);
      const rows = await store.range(k, T0, T0 + 10 * M);
      expect(rows).toHaveLength(2);
      expect(rows[1]).toEqual(candle(k, 1, 'rest', 300));
      expect(await store.bounds(k)).toEqual({ first: T0, last: T0 + M, count: 2 });
    });

    it('keeps instruments apart and lists them', async () => {
      const a = key();
      const b = key();
      await store.insert([candle(a, 0), candle(b, 0), candle(b, 1)]);
      expect(await store.range(a, T0, T0 + 10 * M)).toHaveLength(1);
      expect(await store.range(b, T0, T0 + 10 * M)).toHaveLength(2);
      const listed = await store.instruments();
      expect(listed).toEqual(expect.arrayContaining([a, b]));
      expect([...listed].sort()).toEqual(listed);
    });

    it('last(n) before a time, ascending', async () => {
      const k = key();
      await store.insert(Array.from({ length: 10 }, (_, i) => candle(k, i)));
      expect((await store.last(k, 3)).map((c) => c.tsOpen)).toEqual([7, 8, 9].map((i) => T0 + i * M));
      expect((await store.last(k, 3, T0 + 5 * M)).map((c) => c.tsOpen)).toEqual(
        [2, 3, 4].map((i) => T0 + i * M),
      );
      expect(await store.last(k, 100, T0)).toEqual([]);
    });

    it('open times for the gap ledger', async () => {
      const k = key();
      await store.insert([0, 1, 3, 4, 7].map((i) => candle(k, i)));
      expect(await store.openTimes(k, T0, T0 + 8 * M)).toEqual([0, 1, 3, 4, 7].map((i) => T0 + i * M));
      expect(await store.openTimes(k, T0 + 2 * M, T0 + 4 * M)).toEqual([T0 + 3 * M]);
    });

    it('bounds of an unknown instrument is null; an empty insert is a no-op', async () => {
      expect(await store.bounds(key())).toBeNull();
      await store.insert([]);
    });

    it('refuses candles that are not 1m', async () => {
      const k = key();
      await expect(store.insert([{ ...candle(k, 0), timeframe: '5m', tsClose: T0 + 5 * M }])).rejects.toThrow(
        InvalidArgumentError,
      );
    });

    it('treats hostile strings as data, never SQL', async () => {
      const k = key();
      const c = { ...candle(k, 0), symbol: 'X\'); DROP TABLE t; --\\ \u2603 "q"' };
      await store.insert([c]);
      expect((await store.range(k, T0, T0 + M))[0]?.symbol).toBe(c.symbol);
      for (const bad of ["x' OR 1=1 --", "x\\' OR '1'='1", '%', '_']) {
        expect(await store.range(bad, 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
        expect(await store.bounds(bad)).toBeNull();
      }
      expect(await store.range(k, T0, T0 + M)).toHaveLength(1);
    });

    it('round-trips any double exactly (prices with many decimals, random bits)', async () => {
      const k = key();
      const view = new DataView(new ArrayBuffer(8));
      const randomDouble = (): number => {
        for (;;) {
          view.setUint32(0, randomBytes(4).readUInt32BE() & 0x7fefffff);
          view.setUint32(4, randomBytes(4).readUInt32BE());
          const d = view.getFloat64(0);
          if (Number.isFinite(d) && d > 0) return d;
        }
      };
      const cs = Array.from({ length: 200 }, (_, i) => {
        const p = i % 2 === 0 ? Number((Math.random() * 100_000).toFixed(9)) : randomDouble();
        return {
          ...candle(k, i),
          open: p,
          high: p,
          low: p,
          close: p,
          volumeBase: randomDouble(),
          volumeQuote: i % 5 === 0 ? null : randomDouble(),
        };
      });
      await store.insert(cs);
      expect(await store.range(k, T0, T0 + 200 * M)).toEqual(cs);
    });

    it('handles a large batch (2,000 candles) in one insert', async () => {
      const k = key();
      await store.insert(Array.from({ length: 2000 }, (_, i) => candle(k, i)));
      expect(await store.bounds(k)).toEqual({ first: T0, last: T0 + 1999 * M, count: 2000 });
      const all = await store.range(k, T0, T0 + 2000 * M);
      expect(all).toHaveLength(2000);
      expect(all[1999]).toEqual(candle(k, 1999));
    });
  });
}

/** Values a decimal column or a lossy float print would change. */
export async function expectExactDoubles(store: CandleStore): Promise<void> {
  const k = key();
  const awkward = [
    0.1 + 0.2,
    5e-324,
    1.7976931348623157e308,
    123456789.12345679,
    1 / 3,
    2 ** 53 + 2,
    1e21,
    0,
  ];
  const cs = awkward.map((v, i): Candle => ({
    ...candle(k, i),
    open: v,
    high: v,
    low: v,
    close: v / 2,
    volumeBase: v,
    volumeQuote: v,
    marketId: 2 ** 53 - 1,
  }));
  await store.insert(cs);
  const back = await store.range(k, T0, T0 + awkward.length * M);
  expect(back).toEqual(cs);
  for (const [i, c] of back.entries()) expect(Object.is(c.open, awkward[i])).toBe(true);
}
