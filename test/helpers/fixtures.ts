/** Small fixtures shared by integration tests: synthetic stored candles and metric sums. */
import type { Registry } from 'prom-client';
import type { Candle } from '../../src/contracts/candle.js';

const MINUTE = 60_000;

/** The strategy payload of the smoke scenario, step 3 (docs/runbook.md): MA(20,50) on BTCUSDT 1m. */
export const SMOKE_STRATEGY = Object.freeze({
  instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
  instrument_key: 'binance:spot:BTCUSDT',
  market_type: 'spot',
  timeframe: '1m',
  indicators: [{ name: 'MA', params: { fast: 20, slow: 50 } }],
  signal_template: 'MA(20,50)',
});

/**
 * `n` closed 1m candles of `key` from `t0` (epoch ms), prices on two sine waves (periods `slow` and
 * `fast` candles), so strategies over them cross and signal; tagged origin `rest` like a backfill.
 */
export function sineCandles(key: string, n: number, t0: number, slow = 20, fast = 3): Candle[] {
  return Array.from({ length: n }, (_, i) => {
    const p = 100 + 5 * Math.sin(i / slow) + Math.sin(i / fast);
    return {
      instrumentKey: key,
      symbol: key.split(':')[2] ?? '',
      marketId: 1,
      timeframe: '1m',
      tsOpen: t0 + i * MINUTE,
      tsClose: t0 + (i + 1) * MINUTE,
      open: p,
      high: p + 0.5,
      low: p - 0.5,
      close: p + 0.1,
      volumeBase: 1,
      volumeQuote: p,
      origin: 'rest',
    };
  });
}

/** A metric's value summed over all its label sets (0 when absent). */
export async function metricSum(registry: Registry, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}
