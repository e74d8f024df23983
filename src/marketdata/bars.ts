/**
 * 5-minute bars from 1-minute bars. A 5m bar is emitted when the last minute of its bucket arrives, or
 * when a minute of a later bucket shows the bucket is over (a market close or a missing minute). Input
 * must be in order per instrument (the sources guarantee it); older minutes are ignored.
 */
import type { Candle } from '../contracts/candle.js';
import { TIMEFRAME_MS } from '../contracts/candle.js';

const M1 = TIMEFRAME_MS['1m'];
const M5 = TIMEFRAME_MS['5m'];

interface Bucket {
  start: number;
  last: Candle;
  open: number;
  high: number;
  low: number;
  close: number;
  volumeBase: number;
  volumeQuote: number | null;
  minutes: number;
}

export class FiveMinuteBars {
  private readonly buckets = new Map<string, Bucket>();

  /** Feed one closed 1m candle; returns the 5m bars it completes (zero, one, or two). */
  add(c: Candle): Candle[] {
    if (c.timeframe !== '1m') return [];
    const start = Math.floor(c.tsOpen / M5) * M5;
    const out: Candle[] = [];
    let b = this.buckets.get(c.instrumentKey);
    if (b && c.tsOpen <= b.last.tsOpen) return out; // not newer than what we have
    if (b && b.start !== start) {
      out.push(toBar(b)); // the bucket ended without its last minute
      b = undefined;
    }
    if (!b) {
      b = {
        start,
        last: c,
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        volumeBase: 0,
        volumeQuote: 0,
        minutes: 0,
      };
      this.buckets.set(c.instrumentKey, b);
    }
    b.last = c;
    b.high = Math.max(b.high, c.high);
    b.low = Math.min(b.low, c.low);
    b.close = c.close;
    b.volumeBase += c.volumeBase;
    b.volumeQuote = b.volumeQuote === null || c.volumeQuote === null ? null : b.volumeQuote + c.volumeQuote;
    b.minutes++;
    if (c.tsOpen + M1 === start + M5) {
      out.push(toBar(b));
      this.buckets.delete(c.instrumentKey);
    }
    return out;
  }
}

function toBar(b: Bucket): Candle {
  return {
    instrumentKey: b.last.instrumentKey,
    symbol: b.last.symbol,
    marketId: b.last.marketId,
    timeframe: '5m',
    tsOpen: b.start,
    tsClose: b.start + M5,
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volumeBase: b.volumeBase,
    volumeQuote: b.volumeQuote,
    origin: b.last.origin,
  };
}
