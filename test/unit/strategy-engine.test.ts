import { describe, expect, it } from 'vitest';
import type { Candle } from '../../src/contracts/candle.js';
import { createStrategy, type Strategy, type StrategyStep } from '../../src/strategy/engine.js';
import { referencePaperTrade, referenceSignals } from '../../src/strategy/reference.js';
import { parseStrategySpec } from '../../src/strategy/spec.js';
import { parseSignalTemplate, templateParams } from '../../src/strategy/template.js';
import { mulberry32 } from '../../src/util/prng.js';

const T0 = Date.UTC(2026, 0, 5, 0, 0);
const KEY = 'binance:spot:BTCUSDT';

function candle(i: number, close: number, o: Partial<Candle> = {}): Candle {
  const tsOpen = T0 + i * 60_000;
  return {
    instrumentKey: KEY,
    symbol: 'BTCUSDT',
    marketId: 1,
    timeframe: '1m',
    tsOpen,
    tsClose: tsOpen + 60_000,
    open: close,
    high: close,
    low: close,
    close,
    volumeBase: 1,
    volumeQuote: null,
    origin: 'sim',
    ...o,
  };
}

function strategy(template: string, params: Record<string, number> = {}): Strategy {
  const t = parseSignalTemplate(template);
  return createStrategy(
    parseStrategySpec({
      instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
      instrument_key: KEY,
      market_type: 'spot',
      timeframe: '1m',
      indicators: [{ name: t.kind, params: templateParams(t) }],
      signal_template: template,
      params,
    }),
  );
}

function run(s: Strategy, closes: readonly number[]): StrategyStep[] {
  return closes.map((c, i) => {
    const step = s.onCandle(candle(i, c));
    if (!step) throw new Error(`candle ${i} ignored`);
    return step;
  });
}

/** Multiplicative steps of up to ±1% from 30000. */
function randomWalk(n: number, seed: number): number[] {
  const r = mulberry32(seed);
  const out: number[] = [];
  let p = 30_000;
  for (let i = 0; i < n; i++) out.push((p *= 1 + (r() - 0.5) * 0.02));
  return out;
}

/** Integer closes moving -1, 0 or +1 from 1000: flat stretches give exact ties (fast = slow, no loss, no deviation). */
function integerWalk(n: number, seed: number): number[] {
  const r = mulberry32(seed);
  const out: number[] = [];
  let p = 1000;
  for (let i = 0; i < n; i++) out.push((p += Math.floor(r() * 3) - 1));
  return out;
}

describe('strategy engine vs reference', () => {
  const walks: [string, number[]][] = [
    ['random walk', randomWalk(4000, 42)],
    ['integer walk with ties', integerWalk(4000, 9)],
  ];
  it.each(
    [
      'MA(20,50)',
      'MA(1,2)',
      'EMA(12,26)',
      'EMA(5,200)',
      'RSI(14)',
      'RSI(6,25,75)',
      'BB(20,2)',
      'BB(30,1.5)',
    ].flatMap((t) => walks.map(([name, closes]) => [t, name, closes] as const)),
  )('%s over a %s: same indicators, signals and book, value for value', (template, _walk, closes) => {
    const s = strategy(template, { initial_equity: 1000, position_size: 0.5 });
    const steps = run(s, closes);
    const ref = referenceSignals(s.spec.template, closes);
    expect(steps.map((x) => x.indicators)).toEqual(ref.map((x) => x.indicators));
    expect(steps.map((x) => x.signal)).toEqual(ref.map((x) => x.signal));
    const buys = steps.filter((x) => x.signal === 'buy').length;
    const sells = steps.filter((x) => x.signal === 'sell').length;
    expect(buys).toBeGreaterThan(3);
    expect(sells).toBeGreaterThan(3);
    const book = referencePaperTrade(
      closes,
      ref.map((x) => x.signal),
      1000,
      0.5,
    );
    expect(
      steps.map((x) => ({ position: x.position, equity: x.equity, realizedPnl: x.realizedPnl })),
    ).toEqual(book);
    expect(steps.filter((x) => x.trade).length).toBeGreaterThan(3);
  });

  it('the integer walk has ties and zero-deviation windows', () => {
    const ma = referenceSignals({ kind: 'MA', fast: 1, slow: 2 }, integerWalk(4000, 9));
    expect(ma.filter((x) => x.indicators['ma_fast'] === x.indicators['ma_slow']).length).toBeGreaterThan(100);
    const bb = referenceSignals({ kind: 'BB', period: 2, k: 2 }, integerWalk(4000, 9));
    expect(bb.filter((x) => x.indicators['bb_upper'] === x.indicators['bb_lower']).length).toBeGreaterThan(
      100,
    );
  });

  // Exact ties on the previous candle (a cross needs previous <=, now >) and zero-loss RSI windows.
  it.each<[string, number[], (string | null)[]]>([
    ['MA(1,2)', [10, 10, 11], [null, null, 'buy']],
    ['RSI(2,50,70)', [10, 11, 10, 11], [null, null, null, 'buy']], // RSI exactly 50, then 75
    ['RSI(2)', [10, 11, 12, 11], [null, null, null, 'sell']], // no loss: 100, then 50
    ['RSI(2)', [10, 10, 10, 9], [null, null, null, 'sell']], // no gain and no loss: 100 (library convention), then 0
    ['BB(2,0.5)', [10, 10, 10, 11], [null, null, null, 'buy']], // zero deviation: close = upper, then above
  ])('%s over %j: %j, as the reference says', (template, closes, signals) => {
    const steps = run(strategy(template), closes);
    const ref = referenceSignals(parseSignalTemplate(template), closes);
    expect(steps.map((x) => x.signal)).toEqual(signals);
    expect(ref.map((x) => x.signal)).toEqual(signals);
    expect(steps.map((x) => x.indicators)).toEqual(ref.map((x) => x.indicators));
  });

  it('is deterministic', () => {
    const closes = randomWalk(1000, 5);
    const a = run(strategy('EMA(12,26)'), closes);
    const b = run(strategy('EMA(12,26)'), closes);
    expect(a).toEqual(b);
  });
});

describe('warm-up', () => {
  it.each<[string, number]>([
    ['MA(20,50)', 50],
    ['EMA(12,26)', 26],
    ['RSI(14)', 15],
    ['BB(20,2)', 20],
  ])('%s needs %i candles; all indicators are known exactly from then on', (template, warmup) => {
    const s = strategy(template);
    expect(s.warmupCandles).toBe(warmup);
    const steps = run(s, randomWalk(warmup + 5, 7));
    const known = (x: StrategyStep | undefined): boolean =>
      Object.values(x?.indicators ?? {}).every((v) => v !== null);
    expect(known(steps[warmup - 2])).toBe(false);
    expect(known(steps[warmup - 1])).toBe(true);
    expect(steps.slice(0, warmup).every((x) => x.signal === null)).toBe(true);
  });

  // Each series makes its rule fire on the first candle that can signal: index warmupCandles.
  it.each<[string, number[], 'buy' | 'sell']>([
    ['MA(2,3)', [10, 10, 10, 20], 'buy'],
    ['MA(2,3)', [10, 10, 10, 5], 'sell'],
    ['EMA(2,3)', [10, 10, 10, 20], 'buy'],
    ['RSI(2)', [10, 9, 8, 12], 'buy'],
    ['RSI(2)', [8, 9, 10, 9.5], 'sell'],
    ['BB(2,0.5)', [10, 10, 12], 'buy'],
    ['BB(2,0.5)', [10, 10, 8], 'sell'],
  ])('%s over %j: %s on candle index warmupCandles', (template, series, signal) => {
    const s = strategy(template);
    const steps = run(s, series);
    expect(steps.length).toBe(s.warmupCandles + 1);
    expect(steps.map((x) => x.signal)).toEqual([...Array<null>(s.warmupCandles).fill(null), signal]);
  });

  it('a cross that completes during warm-up is not a signal', () => {
    // EMA(2,3): the jump is on the first candle where both are known; no previous relationship.
    const steps = run(strategy('EMA(2,3)'), [10, 10, 20, 20, 20]);
    expect(steps.map((x) => x.signal)).toEqual([null, null, null, null, null]);
  });
});

describe('paper trading', () => {
  it('matches a hand-computed example (MA(1,2): fast above slow iff the close rose)', () => {
    const s = strategy('MA(1,2)', { initial_equity: 10_000, position_size: 0.5 });
    const steps = run(s, [100, 90, 100, 110, 105, 100, 102.5, 98]);
    expect(steps.map((x) => [x.signal, x.position, x.equity, x.pnl, x.realizedPnl])).toEqual([
      [null, 'flat', 10_000, 0, 0],
      [null, 'flat', 10_000, 0, 0], // 90 < 95: below, first known relationship
      ['buy', 'long', 10_000, 0, 0], // 50 units at 100, cash 5000
      [null, 'long', 10_500, 500, 0], // 5000 + 50 * 110
      ['sell', 'flat', 10_250, 250, 250], // sold at 105: +5 * 50
      [null, 'flat', 10_250, 250, 250], // sell while flat: nothing to do
      ['buy', 'long', 10_250, 250, 250], // 5125 / 102.5 = 50 units, cash 5125
      ['sell', 'flat', 10_025, 25, 25], // 50 * (98 - 102.5) = -225
    ]);
    expect(steps[2]?.trade).toEqual({
      kind: 'open',
      side: 'long',
      price: 100,
      quantity: 50,
      tsOpen: T0 + 120_000,
      realizedPnl: 0,
    });
    expect(steps[7]?.trade).toEqual({
      kind: 'close',
      side: 'long',
      price: 98,
      quantity: 50,
      tsOpen: T0 + 420_000,
      realizedPnl: -225,
    });
    expect(steps[5]?.trade).toBeNull();
  });
});

describe('ignored candles', () => {
  it('ignores out-of-order, duplicate, foreign and broken candles without changing state', () => {
    const closes = randomWalk(300, 3);
    const clean = run(strategy('MA(5,20)'), closes);
    const s = strategy('MA(5,20)');
    const got: (StrategyStep | null)[] = [];
    closes.forEach((c, i) => {
      got.push(s.onCandle(candle(i, c)));
      expect(s.onCandle(candle(i, c * 2))).toBeNull(); // duplicate
      if (i > 0) expect(s.onCandle(candle(i - 1, c * 3))).toBeNull(); // out of order
      expect(s.onCandle(candle(i + 0.5, c, { instrumentKey: 'binance:spot:ETHUSDT' }))).toBeNull();
      expect(s.onCandle(candle(i + 0.5, c, { timeframe: '5m' }))).toBeNull();
      expect(s.onCandle(candle(i + 0.5, Number.NaN))).toBeNull();
      expect(s.onCandle(candle(i + 0.5, 0))).toBeNull();
    });
    expect(got).toEqual(clean);
  });

  it('keeps going after a gap in time', () => {
    const s = strategy('MA(1,2)');
    expect(s.onCandle(candle(0, 1))).not.toBeNull();
    expect(s.onCandle(candle(100, 2))?.indicators).toEqual({ ma_fast: 2, ma_slow: 1.5 });
  });
});
