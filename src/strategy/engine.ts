/**
 * The strategy engine: pure, no I/O. The live runner and backtests drive the same `Strategy` with
 * closed candles in order ("one implementation, two drivers"). Indicators come from `trading-signals`
 * (plain numbers, incremental; memory and work per candle bounded by the period, never by history).
 *
 * Signals (each needs the indicator values of this candle and of the previous one, so there is no
 * signal during warm-up and none on the first candle where the values appear):
 * - `MA(f,s)` / `EMA(f,s)`: buy when fast crosses above slow (previous fast <= slow, now fast > slow),
 *   sell when it crosses below (previous fast >= slow, now fast < slow).
 * - `RSI(n,lo,up)`: buy when previous RSI <= lo and now RSI > lo; sell when previous RSI >= up and now
 *   RSI < up.
 * - `BB(n,k)`: buy when previous close <= previous upper band and now close > upper; sell when
 *   previous close >= previous lower band and now close < lower.
 *
 * Indicator conventions (trading-signals 8.3.0; `reference.ts` recomputes them independently):
 * - SMA(n): mean of the last n closes; value from the n-th close on.
 * - EMA(n): a = 2/(n+1); EMA = close*a + prev*(1-a), where prev is the previous EMA, or for the first
 *   close the close itself (so EMA_1 = close_1*a + close_1*(1-a), = close_1 up to rounding); reported
 *   from the n-th close on (earlier values are computed but reported as null).
 *   Because of the seed, EMA values depend on the first candle fed: drivers that must agree must start
 *   from the same candle.
 * - RSI(n): Wilder. Gains/losses from close-to-close changes; the first averages are the plain means
 *   of the first n changes, then avg = (x - avg) * (1/n) + avg; RSI = 100 - 100/(1 + gain/loss), and
 *   100 when the average loss is 0 (also when both are 0: a flat start reads 100). Reported from the
 *   (n+1)-th close on. Also depends on the first candle.
 * - BB(n,k): middle = SMA(n); bands = middle ± k * population standard deviation (divide by n) of
 *   the last n closes; reported from the n-th close on.
 *
 * Paper trading: long-only, no fees, fills at the candle's close. A buy signal when flat opens a long
 * of `positionSize * equity / close` units; a sell signal when long closes it. A buy while long or a
 * sell while flat is reported as a signal with no trade. Equity = cash + units * close at every
 * candle; pnl = equity - initialEquity; realizedPnl = sum of closed round trips.
 */
import { BollingerBands, EMA, RSI, SMA } from 'trading-signals';
import type { Candle } from '../contracts/candle.js';
import type { StrategySpec } from './spec.js';
import type { SignalTemplate } from './template.js';

export type Signal = 'buy' | 'sell';

/** A paper fill. `realizedPnl`: the round trip's PnL for `close`, 0 for `open`. */
export interface Trade {
  readonly kind: 'open' | 'close';
  readonly side: 'long';
  readonly price: number;
  readonly quantity: number;
  readonly tsOpen: number;
  readonly realizedPnl: number;
}

/** What one candle did. Indicator values are null until that indicator is stable. */
export interface StrategyStep {
  /** The candle's open time and close. */
  readonly tsOpen: number;
  readonly close: number;
  /** Keys: MA `ma_fast`,`ma_slow`; EMA `ema_fast`,`ema_slow`; RSI `rsi`; BB `bb_lower`,`bb_middle`,`bb_upper`. */
  readonly indicators: Readonly<Record<string, number | null>>;
  readonly signal: Signal | null;
  readonly trade: Trade | null;
  readonly position: 'flat' | 'long';
  readonly equity: number;
  readonly pnl: number;
  readonly realizedPnl: number;
}

export interface Strategy {
  readonly spec: StrategySpec;
  /**
   * Candles after which every indicator value is non-null: MA/EMA `slow`, RSI `period + 1`, BB
   * `period`. After feeding this many candles, the next candle is the first that can signal.
   */
  readonly warmupCandles: number;
  /**
   * Feed the next closed candle. Returns null, changing nothing, for a candle that is ignored: out of
   * order or duplicate (`tsOpen` <= the last accepted one), of another instrument key or timeframe,
   * or with a close that is not a positive finite number.
   */
  onCandle(candle: Candle): StrategyStep | null;
}

interface Rule {
  readonly warmup: number;
  step(close: number): { indicators: Record<string, number | null>; signal: Signal | null };
}

export function warmupCandlesOf(t: SignalTemplate): number {
  return t.kind === 'RSI' ? t.period + 1 : t.kind === 'BB' ? t.period : t.slow;
}

export function createStrategy(spec: StrategySpec): Strategy {
  const rule = makeRule(spec.template);
  const { initialEquity, positionSize } = spec.params;
  let lastTs = -Infinity;
  let cash = initialEquity;
  let units = 0;
  let entry = 0;
  let realizedPnl = 0;
  return {
    spec,
    warmupCandles: rule.warmup,
    onCandle(c: Candle): StrategyStep | null {
      if (c.tsOpen <= lastTs || c.instrumentKey !== spec.instrumentKey || c.timeframe !== spec.timeframe)
        return null;
      if (!Number.isFinite(c.close) || c.close <= 0) return null;
      lastTs = c.tsOpen;
      const { indicators, signal } = rule.step(c.close);
      let trade: Trade | null = null;
      if (signal === 'buy' && units === 0) {
        units = (cash * positionSize) / c.close;
        cash -= units * c.close;
        entry = c.close;
        trade = {
          kind: 'open',
          side: 'long',
          price: c.close,
          quantity: units,
          tsOpen: c.tsOpen,
          realizedPnl: 0,
        };
      } else if (signal === 'sell' && units > 0) {
        const pnl = units * (c.close - entry);
        cash += units * c.close;
        realizedPnl += pnl;
        trade = {
          kind: 'close',
          side: 'long',
          price: c.close,
          quantity: units,
          tsOpen: c.tsOpen,
          realizedPnl: pnl,
        };
        units = 0;
      }
      const equity = cash + units * c.close;
      return {
        tsOpen: c.tsOpen,
        close: c.close,
        indicators,
        signal,
        trade,
        position: units > 0 ? 'long' : 'flat',
        equity,
        pnl: equity - initialEquity,
        realizedPnl,
      };
    },
  };
}

/** up: a crossed above b; down: a crossed below b; null when no cross or a value is unknown. */
function cross(
  pa: number | null,
  pb: number | null,
  a: number | null,
  b: number | null,
): 'up' | 'down' | null {
  if (pa === null || pb === null || a === null || b === null) return null;
  if (pa <= pb && a > b) return 'up';
  if (pa >= pb && a < b) return 'down';
  return null;
}

function toSignal(x: 'up' | 'down' | null, up: Signal | null, down: Signal | null): Signal | null {
  return x === 'up' ? up : x === 'down' ? down : null;
}

function makeRule(t: SignalTemplate): Rule {
  let prev: Record<string, number | null> = {};
  const warmup = warmupCandlesOf(t);
  switch (t.kind) {
    case 'MA':
    case 'EMA': {
      const [fast, slow] =
        t.kind === 'MA' ? [new SMA(t.fast), new SMA(t.slow)] : [new EMA(t.fast), new EMA(t.slow)];
      const [kf, ks] = t.kind === 'MA' ? ['ma_fast', 'ma_slow'] : ['ema_fast', 'ema_slow'];
      return {
        warmup,
        step(close) {
          fast.add(close);
          slow.add(close);
          const now = { [kf]: fast.getResult(), [ks]: slow.getResult() };
          const x = cross(prev[kf] ?? null, prev[ks] ?? null, now[kf] ?? null, now[ks] ?? null);
          prev = now;
          return { indicators: now, signal: toSignal(x, 'buy', 'sell') };
        },
      };
    }
    case 'RSI': {
      const rsi = new RSI(t.period);
      return {
        warmup,
        step(close) {
          rsi.add(close);
          const now = { rsi: rsi.getResult() };
          const p = prev['rsi'] ?? null;
          const signal =
            toSignal(cross(p, t.lower, now.rsi, t.lower), 'buy', null) ??
            toSignal(cross(p, t.upper, now.rsi, t.upper), null, 'sell');
          prev = now;
          return { indicators: now, signal };
        },
      };
    }
    case 'BB': {
      const bb = new BollingerBands(t.period, t.k);
      return {
        warmup,
        step(close) {
          bb.add(close);
          const r = bb.getResult();
          const now = {
            close,
            bb_lower: r?.lower ?? null,
            bb_middle: r?.middle ?? null,
            bb_upper: r?.upper ?? null,
          };
          const p = prev;
          const signal =
            toSignal(cross(p['close'] ?? null, p['bb_upper'] ?? null, close, now.bb_upper), 'buy', null) ??
            toSignal(cross(p['close'] ?? null, p['bb_lower'] ?? null, close, now.bb_lower), null, 'sell');
          prev = now;
          const { close: _close, ...indicators } = now;
          return { indicators, signal };
        },
      };
    }
  }
}
