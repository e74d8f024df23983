/**
 * A reference computation of the strategy signals over an array of closes: plain loops and sums, no
 * trading-signals, nothing shared with `engine.ts`. Tests compare the engine with it, value for value.
 * It follows the conventions documented in `engine.ts`, arithmetic in the same order so that results
 * are bit-identical:
 * - SMA(n)[i] = (c[i-n+1] + ... + c[i]) / n, summed left to right from 0.
 * - EMA(n): a = 2/(n+1); e[0] = c[0]*a + c[0]*(1-a); e[i] = c[i]*a + e[i-1]*(1-a); null for i < n-1.
 * - RSI(n): change d[i] = c[i] - c[i-1]; gain = d > 0 ? d : 0, loss = d > 0 ? 0 : c[i-1] - c[i];
 *   at i = n the averages are the means of d[1..n]; later avg = (x - avg) * (1/n) + avg;
 *   RSI = 100 when the average loss is 0, else 100 - 100 / (gain/loss + 1); null for i < n.
 * - BB(n,k): m = SMA(n); sd = sqrt(sum((c-m)^2) / n); bands m ± sd*k; null for i < n-1.
 * Quadratic in the period (every window is summed again): fine for tests, not for production.
 */
import type { SignalTemplate } from './template.js';

export interface ReferenceStep {
  readonly indicators: Readonly<Record<string, number | null>>;
  readonly signal: 'buy' | 'sell' | null;
}

/** One step per close, with the same indicator keys as the engine. */
export function referenceSignals(t: SignalTemplate, closes: readonly number[]): ReferenceStep[] {
  const out: ReferenceStep[] = [];
  if (t.kind === 'MA' || t.kind === 'EMA') {
    const f = t.kind === 'MA' ? sma(closes, t.fast) : ema(closes, t.fast);
    const s = t.kind === 'MA' ? sma(closes, t.slow) : ema(closes, t.slow);
    const kf = t.kind === 'MA' ? 'ma_fast' : 'ema_fast';
    const ks = t.kind === 'MA' ? 'ma_slow' : 'ema_slow';
    for (let i = 0; i < closes.length; i++) {
      let signal: ReferenceStep['signal'] = null;
      const pf = i > 0 ? f[i - 1] : null;
      const ps = i > 0 ? s[i - 1] : null;
      const cf = f[i];
      const cs = s[i];
      if (pf != null && ps != null && cf != null && cs != null) {
        if (pf <= ps && cf > cs) signal = 'buy';
        else if (pf >= ps && cf < cs) signal = 'sell';
      }
      out.push({ indicators: { [kf]: cf ?? null, [ks]: cs ?? null }, signal });
    }
  } else if (t.kind === 'RSI') {
    const r = rsi(closes, t.period);
    for (let i = 0; i < closes.length; i++) {
      let signal: ReferenceStep['signal'] = null;
      const p = i > 0 ? r[i - 1] : null;
      const c = r[i];
      if (p != null && c != null) {
        if (p <= t.lower && c > t.lower) signal = 'buy';
        else if (p >= t.upper && c < t.upper) signal = 'sell';
      }
      out.push({ indicators: { rsi: c ?? null }, signal });
    }
  } else {
    const n = t.period;
    const lower: (number | null)[] = [];
    const middle: (number | null)[] = [];
    const upper: (number | null)[] = [];
    for (let i = 0; i < closes.length; i++) {
      if (i < n - 1) {
        lower.push(null);
        middle.push(null);
        upper.push(null);
      } else {
        let sum = 0;
        for (let j = i - n + 1; j <= i; j++) sum += closes[j] ?? NaN;
        const m = sum / n;
        let sq = 0;
        for (let j = i - n + 1; j <= i; j++) {
          const d = (closes[j] ?? NaN) - m;
          sq += d * d;
        }
        const sd = Math.sqrt(sq / n);
        lower.push(m - sd * t.k);
        middle.push(m);
        upper.push(m + sd * t.k);
      }
      let signal: ReferenceStep['signal'] = null;
      const pu = i > 0 ? upper[i - 1] : null;
      const pl = i > 0 ? lower[i - 1] : null;
      const pc = closes[i - 1] ?? NaN;
      const c = closes[i] ?? NaN;
      const u = upper[i];
      const l = lower[i];
      if (pu != null && u != null && pc <= pu && c > u) signal = 'buy';
      else if (pl != null && l != null && pc >= pl && c < l) signal = 'sell';
      out.push({
        indicators: { bb_lower: l ?? null, bb_middle: middle[i] ?? null, bb_upper: u ?? null },
        signal,
      });
    }
  }
  return out;
}

function sma(c: readonly number[], n: number): (number | null)[] {
  const out: (number | null)[] = [];
  for (let i = 0; i < c.length; i++) {
    if (i < n - 1) {
      out.push(null);
      continue;
    }
    let sum = 0;
    for (let j = i - n + 1; j <= i; j++) sum += c[j] ?? NaN;
    out.push(sum / n);
  }
  return out;
}

function ema(c: readonly number[], n: number): (number | null)[] {
  const a = 2 / (n + 1);
  const out: (number | null)[] = [];
  let e = 0;
  for (let i = 0; i < c.length; i++) {
    const x = c[i] ?? NaN;
    e = x * a + (i === 0 ? x : e) * (1 - a);
    out.push(i >= n - 1 ? e : null);
  }
  return out;
}

function rsi(c: readonly number[], n: number): (number | null)[] {
  const out: (number | null)[] = [null];
  const gains: number[] = [];
  const losses: number[] = [];
  let g = 0;
  let l = 0;
  for (let i = 1; i < c.length; i++) {
    const prev = c[i - 1] ?? NaN;
    const cur = c[i] ?? NaN;
    const gain = cur > prev ? cur - prev : 0;
    const loss = cur > prev ? 0 : prev - cur;
    if (i < n) {
      gains.push(gain);
      losses.push(loss);
      out.push(null);
      continue;
    }
    if (i === n) {
      gains.push(gain);
      losses.push(loss);
      g = 0;
      l = 0;
      for (const x of gains) g += x;
      for (const x of losses) l += x;
      g = g / n;
      l = l / n;
    } else {
      g = (gain - g) * (1 / n) + g;
      l = (loss - l) * (1 / n) + l;
    }
    out.push(l === 0 ? 100 : 100 - 100 / (g / l + 1));
  }
  return out.slice(0, c.length);
}

/** Per-close paper-trading state, as documented in `engine.ts` (long-only, fills at the close, no fees). */
export interface ReferenceBook {
  readonly position: 'flat' | 'long';
  readonly equity: number;
  readonly realizedPnl: number;
}

export function referencePaperTrade(
  closes: readonly number[],
  signals: readonly ('buy' | 'sell' | null)[],
  initialEquity: number,
  positionSize: number,
): ReferenceBook[] {
  const out: ReferenceBook[] = [];
  let cash = initialEquity;
  let units = 0;
  let entry = 0;
  let realized = 0;
  for (let i = 0; i < closes.length; i++) {
    const price = closes[i] ?? NaN;
    if (signals[i] === 'buy' && units === 0) {
      units = (cash * positionSize) / price;
      cash = cash - units * price;
      entry = price;
    } else if (signals[i] === 'sell' && units > 0) {
      realized = realized + units * (price - entry);
      cash = cash + units * price;
      units = 0;
    }
    out.push({ position: units > 0 ? 'long' : 'flat', equity: cash + units * price, realizedPnl: realized });
  }
  return out;
}
