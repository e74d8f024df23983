import { describe, expect, it } from 'vitest';
import { FiveMinuteBars } from '../../src/marketdata/bars.js';
import { PublishGate } from '../../src/marketdata/publish-gate.js';
import type { Candle } from '../../src/contracts/candle.js';

const T0 = Date.UTC(2026, 1, 10, 12, 30);
function m1(i: number, o: Partial<Candle> = {}): Candle {
  const tsOpen = T0 + i * 60_000;
  return {
    instrumentKey: 'sim:spot:BTCUSDT',
    symbol: 'BTCUSDT',
    marketId: 1,
    timeframe: '1m',
    tsOpen,
    tsClose: tsOpen + 60_000,
    open: 10 + i,
    high: 20 + i,
    low: 5 + i,
    close: 11 + i,
    volumeBase: 1,
    volumeQuote: 10,
    origin: 'sim',
    ...o,
  };
}

describe('5m bars from 1m bars', () => {
  it('emits a bar when the fifth minute arrives, with open of the first, close of the last, extremes and sums', () => {
    const b = new FiveMinuteBars();
    const out = [0, 1, 2, 3, 4].flatMap((i) => b.add(m1(i)));
    expect(out).toEqual([
      expect.objectContaining({
        timeframe: '5m',
        tsOpen: T0,
        tsClose: T0 + 300_000,
        open: 10,
        close: 15,
        high: 24,
        low: 5,
        volumeBase: 5,
        volumeQuote: 50,
      }),
    ]);
  });

  it('closes a bucket early when a later bucket starts (missing minute or market close)', () => {
    const b = new FiveMinuteBars();
    expect([0, 1, 2].flatMap((i) => b.add(m1(i)))).toEqual([]);
    const out = b.add(m1(6));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ tsOpen: T0, close: 13, volumeBase: 3 });
  });

  it('ignores duplicates and older minutes; unknown quote volume stays unknown', () => {
    const b = new FiveMinuteBars();
    b.add(m1(0));
    expect(b.add(m1(0))).toEqual([]);
    b.add(m1(1, { volumeQuote: null }));
    const out = [2, 3, 4].flatMap((i) => b.add(m1(i)));
    expect(out[0]?.volumeQuote).toBeNull();
    expect(out[0]?.volumeBase).toBe(5);
  });
});

describe('publish gate', () => {
  it('admits each stream time once and never an older one', () => {
    const g = new PublishGate();
    expect(g.admit('s', 120_000)).toBe(true);
    expect(g.admit('s', 120_000)).toBe(false);
    expect(g.admit('s', 60_000)).toBe(false);
    expect(g.admit('t', 60_000)).toBe(true);
    expect(g.admit('s', 180_000)).toBe(true);
  });
});
