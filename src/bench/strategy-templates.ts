/**
 * The strategy mix the benches run (runner-bench, the soak): MA, EMA, RSI and BB in turn, with periods
 * varied by index so strategies on one instrument do not all hold the same indicator state and step alike.
 */

export interface BenchTemplate {
  /** Indicator name, as `indicators[].name` of a strategy takes it. */
  readonly name: 'MA' | 'EMA' | 'RSI' | 'BB';
  /** Its parameters (periods in candles; RSI bounds in points; BB width in standard deviations). */
  readonly params: Readonly<Record<string, number>>;
  /** The signal template, e.g. `MA(5,12)`. */
  readonly text: string;
}

/** The template of strategy `i` (0-based): first period 3..19, the slow one (MA, EMA) 5..27 above it. */
export function benchTemplate(i: number): BenchTemplate {
  const a = 3 + (i % 17);
  const b = a + 5 + (i % 23);
  switch (i % 4) {
    case 0:
      return { name: 'MA', params: { fast: a, slow: b }, text: `MA(${a},${b})` };
    case 1:
      return { name: 'EMA', params: { fast: a, slow: b }, text: `EMA(${a},${b})` };
    case 2:
      return { name: 'RSI', params: { period: a, lower: 30, upper: 70 }, text: `RSI(${a},30,70)` };
    default:
      return { name: 'BB', params: { period: a, k: 2 }, text: `BB(${a},2)` };
  }
}
