import { describe, expect, it } from 'vitest';
import { StrategyInvalidError } from '../../src/util/errors.js';
import { formatSignalTemplate, parseSignalTemplate } from '../../src/strategy/template.js';

function failure(text: string): StrategyInvalidError {
  try {
    parseSignalTemplate(text);
  } catch (err) {
    if (err instanceof StrategyInvalidError) return err;
    throw err;
  }
  throw new Error(`${text} parsed`);
}

describe('signal_template parser', () => {
  it.each([
    ['MA(20,50)', { kind: 'MA', fast: 20, slow: 50 }, 'MA(20,50)'],
    ['  MA ( 20 ,\t50 )  ', { kind: 'MA', fast: 20, slow: 50 }, 'MA(20,50)'],
    ['EMA(12,26)', { kind: 'EMA', fast: 12, slow: 26 }, 'EMA(12,26)'],
    ['RSI(14)', { kind: 'RSI', period: 14, lower: 30, upper: 70 }, 'RSI(14,30,70)'],
    ['RSI(7, 25, 75)', { kind: 'RSI', period: 7, lower: 25, upper: 75 }, 'RSI(7,25,75)'],
    ['RSI(2,0,100)', { kind: 'RSI', period: 2, lower: 0, upper: 100 }, 'RSI(2,0,100)'],
    ['BB(20,2)', { kind: 'BB', period: 20, k: 2 }, 'BB(20,2)'],
    ['BB(20, 2.5)', { kind: 'BB', period: 20, k: 2.5 }, 'BB(20,2.5)'],
    ['MA(1,1000)', { kind: 'MA', fast: 1, slow: 1000 }, 'MA(1,1000)'],
  ])('%s', (text, want, canonical) => {
    const t = parseSignalTemplate(text);
    expect(t).toEqual(want);
    expect(formatSignalTemplate(t)).toBe(canonical);
  });

  it.each([
    ['', 0, /expected an indicator name/],
    ['   ', 3, /expected an indicator name/],
    ['XYZ(1,2)', 0, /unknown indicator "XYZ"/],
    ['ma(20,50)', 0, /names are upper case: MA/],
    ['M A(20,50)', 0, /unknown indicator "M"/],
    ['MA[20,50]', 2, /expected "\("/],
    ['MA()', 3, /expected a positive number/],
    ['MA(20;50)', 5, /expected "," or "\)"/],
    ['MA(20,,50)', 6, /expected a positive number/],
    ['MA(20,50', 8, /expected "," or "\)" at position 8 \(at end\)/],
    ['MA(20,50)x', 9, /unexpected text after/],
    ['MA(20,50) MA(1,2)', 10, /unexpected text after/],
    ['MA(-5,10)', 3, /expected a positive number/],
    ['BB(20,.5)', 6, /expected a positive number/],
    ['BB(20,2.)', 7, /expected "," or "\)"/],
    ['MA(1e3,2000)', 4, /expected "," or "\)"/],
    ['MA(20)', 5, /MA takes 2 parameters: MA\(fast,slow\)/],
    ['MA(1,2,3)', 7, /MA takes 2 parameters/],
    ['RSI(14,30)', 9, /RSI takes 1 or 3 parameters/],
    ['BB(20)', 5, /BB takes 2 parameters: BB\(period,k\)/],
    ['MA(50,20)', 3, /fast must be less than slow \(20\)/],
    ['MA(20,20)', 3, /fast must be less than slow/],
    ['MA(0,5)', 3, /fast must be an integer in 1\.\.1000/],
    ['EMA(20.5,50)', 4, /fast must be an integer/],
    ['MA(20,1001)', 6, /slow must be an integer in 1\.\.1000/],
    ['RSI(1)', 4, /period must be an integer in 2\.\.1000/],
    ['RSI(14,70,30)', 7, /lower must be less than upper \(30\)/],
    ['RSI(14,30,101)', 10, /upper must be an integer in 0\.\.100/],
    ['BB(20,0)', 6, /k must be a number greater than 0/],
    ['BB(20,10.5)', 6, /at most 10/],
    ['BB(1,2)', 3, /period must be an integer in 2\.\.1000/],
  ])('%j fails at position %i', (text, position, message) => {
    const err = failure(text);
    expect(err.code).toBe('STRATEGY_INVALID');
    expect(err.field).toBe('signal_template');
    expect(err.position).toBe(position);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(`at position ${position}`);
  });

  it('refuses a very long template without echoing all of it', () => {
    const err = failure(`MA(20,50)${' '.repeat(300)}`);
    expect(err.message).toMatch(/longer than 200/);
    expect(err.message.length).toBeLessThan(200);
  });
});
