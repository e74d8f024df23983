import { describe, expect, it } from 'vitest';
import { isMarketOpen, marketHoursKind, nextChange } from '../../src/marketdata/market-hours.js';

// 2026-01-09 is a Friday, 2026-01-11 a Sunday.
const FRI_2200 = Date.UTC(2026, 0, 9, 22, 0);
const SUN_2200 = Date.UTC(2026, 0, 11, 22, 0);
const NEXT_FRI_2200 = Date.UTC(2026, 0, 16, 22, 0);

describe('market hours', () => {
  it('spot and crypto are always open and never change', () => {
    for (const key of ['sim:spot:BTCUSDT', 'binance:spot:ETHUSDT', 'binance:futures:BTCUSDT']) {
      expect(marketHoursKind(key)).toBe('always');
      for (const t of [FRI_2200, FRI_2200 + 3_600_000, SUN_2200 - 1, Date.UTC(2026, 0, 10, 12)]) {
        expect(isMarketOpen(key, t)).toBe(true);
        expect(nextChange(key, t)).toBeNull();
      }
    }
  });

  it('FX of any exchange closes Friday 22:00 UTC and opens Sunday 22:00 UTC', () => {
    for (const key of ['sim:fx:XAUUSD', 'fxcm:fx:EURUSD', 'oanda:fx:USDJPY']) {
      expect(marketHoursKind(key)).toBe('fx');
      expect(isMarketOpen(key, FRI_2200 - 1)).toBe(true);
      expect(isMarketOpen(key, FRI_2200)).toBe(false);
      expect(isMarketOpen(key, Date.UTC(2026, 0, 10, 12))).toBe(false); // Saturday
      expect(isMarketOpen(key, SUN_2200 - 1)).toBe(false);
      expect(isMarketOpen(key, SUN_2200)).toBe(true);
      expect(isMarketOpen(key, Date.UTC(2026, 0, 12, 9))).toBe(true); // Monday
      expect(isMarketOpen(key, Date.UTC(2026, 0, 14, 23, 59))).toBe(true); // Wednesday night
    }
  });

  it('nextChange gives the next flip, at which the new state already holds', () => {
    const k = 'sim:fx:XAUUSD';
    expect(nextChange(k, Date.UTC(2026, 0, 7, 12))).toBe(FRI_2200); // Wednesday
    expect(nextChange(k, FRI_2200 - 1)).toBe(FRI_2200);
    expect(nextChange(k, FRI_2200)).toBe(SUN_2200);
    expect(nextChange(k, Date.UTC(2026, 0, 10, 3))).toBe(SUN_2200); // Saturday
    expect(nextChange(k, Date.UTC(2026, 0, 11, 0))).toBe(SUN_2200); // Sunday 00:00
    expect(nextChange(k, SUN_2200)).toBe(NEXT_FRI_2200);
  });

  it('state is constant up to nextChange and flips there (a year of random instants, epoch edges)', () => {
    const k = 'sim:fx:EURUSD';
    let x = 12345;
    const rand = (): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 2 ** 32;
    };
    const instants = [0, 1, Date.UTC(1970, 0, 4), Date.UTC(2024, 1, 29, 22), Date.UTC(2024, 11, 31, 23, 59)];
    for (let i = 0; i < 2000; i++)
      instants.push(Date.UTC(2025, 0, 1) + Math.floor(rand() * 366 * 86_400_000));
    for (const t of instants) {
      const change = nextChange(k, t);
      expect(change).not.toBeNull();
      if (change === null) continue;
      expect(change).toBeGreaterThan(t);
      expect(change - t).toBeLessThanOrEqual(5 * 86_400_000);
      expect(isMarketOpen(k, change - 1)).toBe(isMarketOpen(k, t));
      expect(isMarketOpen(k, change)).toBe(!isMarketOpen(k, t));
      expect(new Date(change).getUTCHours()).toBe(22);
      expect([0, 5]).toContain(new Date(change).getUTCDay());
    }
  });
});
