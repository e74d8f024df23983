/**
 * What a backtest reports, accumulated step by step from the engine's `StrategyStep`s: round-trip
 * trades, every signal, an equity curve downsampled to at most `maxCurvePoints` points (keep every
 * k-th candle, k doubling whenever the curve fills up, plus the last candle), PnL, maximum drawdown
 * (peak to trough of the equity at every candle, not of the downsampled curve) and win rate.
 *
 * Times in arrays are epoch ms (`ts`, the candle's open time); range and candle bounds are ISO-8601.
 */
import type { StrategyStep } from '../strategy/engine.js';
import type { StrategySpec } from '../strategy/spec.js';

export interface BacktestTrade {
  readonly entry_ts: number;
  readonly exit_ts: number;
  readonly entry_price: number;
  readonly exit_price: number;
  readonly quantity: number;
  readonly pnl: number;
  /** exit / entry - 1. */
  readonly return_pct: number;
}

export interface BacktestSignal {
  readonly ts: number;
  readonly signal: 'buy' | 'sell';
  readonly price: number;
}

export interface BacktestSummary {
  readonly initial_equity: number;
  readonly final_equity: number;
  readonly pnl: number;
  readonly pnl_pct: number;
  readonly realized_pnl: number;
  readonly unrealized_pnl: number;
  readonly max_drawdown: number;
  /** Of the peak, 0..1. */
  readonly max_drawdown_pct: number;
  /** Closed round trips. */
  readonly trades: number;
  readonly wins: number;
  readonly losses: number;
  /** wins / trades; null without closed trades. */
  readonly win_rate: number | null;
  readonly signals: number;
  readonly buy_signals: number;
  readonly sell_signals: number;
  readonly position: 'flat' | 'long';
}

export interface BacktestResult {
  readonly strategy: {
    readonly name: string;
    readonly signal_template: string;
    readonly instrument_key: string;
    readonly timeframe: string;
  };
  readonly range: { readonly from: string; readonly to: string };
  readonly candles: {
    /** Fed before `from` to warm the indicators (no signals recorded). */
    readonly warmup: number;
    /** In [from, to). */
    readonly processed: number;
    readonly first: string | null;
    readonly last: string | null;
  };
  /** False when the backtest was cancelled before the end of the range (the figures cover what ran). */
  readonly complete: boolean;
  readonly summary: BacktestSummary;
  readonly trades: readonly BacktestTrade[];
  readonly open_trade: {
    readonly entry_ts: number;
    readonly entry_price: number;
    readonly quantity: number;
    readonly unrealized_pnl: number;
  } | null;
  readonly signals: readonly BacktestSignal[];
  readonly equity_curve: readonly { readonly ts: number; readonly equity: number }[];
}

export const DEFAULT_MAX_CURVE_POINTS = 2000;

export class BacktestAccumulator {
  private readonly initial: number;
  private readonly maxPoints: number;
  private curve: { ts: number; equity: number }[] = [];
  private stride = 1;
  private n = 0;
  private last: StrategyStep | null = null;
  private firstTs: number | null = null;
  private peak: number;
  private maxDd = 0;
  private maxDdPct = 0;
  private readonly trades: BacktestTrade[] = [];
  private readonly signals: BacktestSignal[] = [];
  private buys = 0;
  private open: { entry_ts: number; entry_price: number; quantity: number } | null = null;
  warmup = 0;

  constructor(
    private readonly spec: StrategySpec,
    maxCurvePoints = DEFAULT_MAX_CURVE_POINTS,
  ) {
    this.initial = spec.params.initialEquity;
    this.peak = this.initial;
    this.maxPoints = Math.max(2, maxCurvePoints);
  }

  /** Steps processed (candles in the range the engine accepted). */
  get processed(): number {
    return this.n;
  }

  add(step: StrategyStep): void {
    this.firstTs ??= step.tsOpen;
    if (this.n % this.stride === 0) {
      this.curve.push({ ts: step.tsOpen, equity: step.equity });
      if (this.curve.length >= this.maxPoints) {
        this.curve = this.curve.filter((_, i) => i % 2 === 0);
        this.stride *= 2;
      }
    }
    this.n++;
    this.last = step;
    if (step.equity > this.peak) this.peak = step.equity;
    const dd = this.peak - step.equity;
    if (dd > this.maxDd) this.maxDd = dd;
    if (this.peak > 0 && dd / this.peak > this.maxDdPct) this.maxDdPct = dd / this.peak;
    if (step.signal) {
      this.signals.push({ ts: step.tsOpen, signal: step.signal, price: step.close });
      if (step.signal === 'buy') this.buys++;
    }
    const t = step.trade;
    if (t?.kind === 'open') this.open = { entry_ts: t.tsOpen, entry_price: t.price, quantity: t.quantity };
    else if (t?.kind === 'close' && this.open) {
      this.trades.push({
        entry_ts: this.open.entry_ts,
        exit_ts: t.tsOpen,
        entry_price: this.open.entry_price,
        exit_price: t.price,
        quantity: t.quantity,
        pnl: t.realizedPnl,
        return_pct: t.price / this.open.entry_price - 1,
      });
      this.open = null;
    }
  }

  result(range: { from: number; to: number }, complete: boolean): BacktestResult {
    const last = this.last;
    const curve = [...this.curve];
    if (last && curve[curve.length - 1]?.ts !== last.tsOpen)
      curve.push({ ts: last.tsOpen, equity: last.equity });
    const finalEquity = last?.equity ?? this.initial;
    const realized = last?.realizedPnl ?? 0;
    const wins = this.trades.filter((t) => t.pnl > 0).length;
    const open = this.open;
    return {
      strategy: {
        name: this.spec.name,
        signal_template: this.spec.signalTemplate,
        instrument_key: this.spec.instrumentKey,
        timeframe: this.spec.timeframe,
      },
      range: { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString() },
      candles: {
        warmup: this.warmup,
        processed: this.n,
        first: this.firstTs === null ? null : new Date(this.firstTs).toISOString(),
        last: last ? new Date(last.tsOpen).toISOString() : null,
      },
      complete,
      summary: {
        initial_equity: this.initial,
        final_equity: finalEquity,
        pnl: finalEquity - this.initial,
        pnl_pct: (finalEquity - this.initial) / this.initial,
        realized_pnl: realized,
        unrealized_pnl: finalEquity - this.initial - realized,
        max_drawdown: this.maxDd,
        max_drawdown_pct: this.maxDdPct,
        trades: this.trades.length,
        wins,
        losses: this.trades.length - wins,
        win_rate: this.trades.length > 0 ? wins / this.trades.length : null,
        signals: this.signals.length,
        buy_signals: this.buys,
        sell_signals: this.signals.length - this.buys,
        position: last?.position ?? 'flat',
      },
      trades: this.trades,
      open_trade:
        open && last ? { ...open, unrealized_pnl: open.quantity * (last.close - open.entry_price) } : null,
      signals: this.signals,
      equity_curve: curve,
    };
  }
}
