import { describe, expect, it } from 'vitest';
import { missingRanges } from '../../src/history/gaps.js';

const M = 60_000;
const MON = Date.UTC(2026, 1, 9, 12, 0); // a Monday

describe('gap ledger', () => {
  it('lists missing minutes as ranges', () => {
    const stored = [0, 1, 4, 5, 9].map((i) => MON + i * M);
    expect(missingRanges('sim:spot:BTCUSDT', MON, MON + 10 * M, stored)).toEqual([
      { instrumentKey: 'sim:spot:BTCUSDT', fromMs: MON + 2 * M, toMs: MON + 4 * M, minutes: 2 },
      { instrumentKey: 'sim:spot:BTCUSDT', fromMs: MON + 6 * M, toMs: MON + 9 * M, minutes: 3 },
    ]);
    expect(missingRanges('sim:spot:BTCUSDT', MON, MON + 2 * M, [MON, MON + M])).toEqual([]);
  });

  it('does not count the FX weekend as a gap', () => {
    const fri2158 = Date.UTC(2026, 1, 13, 21, 58);
    const sun2202 = Date.UTC(2026, 1, 15, 22, 2);
    const stored = [fri2158, fri2158 + M, Date.UTC(2026, 1, 15, 22, 0), Date.UTC(2026, 1, 15, 22, 1)];
    expect(missingRanges('sim:fx:XAUUSD', fri2158, sun2202, stored)).toEqual([]);
    // the same minutes for a crypto pair are a two-day gap
    expect(missingRanges('sim:spot:BTCUSDT', fri2158, sun2202, stored)[0]?.minutes).toBe(2 * 1440);
  });
});
