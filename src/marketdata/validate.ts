/**
 * Defence in depth: every candle and tick is checked before it is published, whatever the source
 * already checked. A failure returns the reason; the caller counts it and drops the item.
 */
import type { Candle, Tick } from '../contracts/candle.js';
import { TIMEFRAME_MS } from '../contracts/candle.js';

const finite = (n: number): boolean => typeof n === 'number' && Number.isFinite(n);

export function candleProblem(c: Candle, known: ReadonlySet<string>): string | null {
  if (!known.has(c.instrumentKey))
    return `unknown instrument ${JSON.stringify(c.instrumentKey.slice(0, 100))}`;
  const interval = TIMEFRAME_MS[c.timeframe];
  if (!finite(c.tsOpen) || c.tsOpen <= 0 || c.tsOpen % interval !== 0) return `bad ts_open ${c.tsOpen}`;
  if (c.tsClose !== c.tsOpen + interval) return `ts_close ${c.tsClose} is not ts_open + ${interval} ms`;
  for (const [k, v] of [
    ['open', c.open],
    ['high', c.high],
    ['low', c.low],
    ['close', c.close],
    ['volume_base', c.volumeBase],
  ] as const) {
    if (!finite(v) || v < 0) return `${k} is not a non-negative number`;
  }
  if (c.volumeQuote !== null && (!finite(c.volumeQuote) || c.volumeQuote < 0))
    return 'volume_quote is not a non-negative number';
  if (c.high < Math.max(c.open, c.close, c.low) || c.low > Math.min(c.open, c.close))
    return 'high/low do not enclose open/close';
  return null;
}

export function tickProblem(t: Tick, known: ReadonlySet<string>): string | null {
  if (!known.has(t.instrumentKey))
    return `unknown instrument ${JSON.stringify(t.instrumentKey.slice(0, 100))}`;
  if (!finite(t.bid) || !finite(t.ask) || t.bid <= 0 || t.ask <= 0) return 'bid/ask are not positive numbers';
  if (!finite(t.tsMs) || t.tsMs <= 0) return `bad tick time ${t.tsMs}`;
  return null;
}
