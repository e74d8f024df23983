import { describe, expect, it } from 'vitest';
import { StrategyInvalidError } from '../../src/util/errors.js';
import { parseStrategySpec, strategySpecToPayload } from '../../src/strategy/spec.js';
import { SMOKE_STRATEGY } from '../helpers/fixtures.js';

const SEED = SMOKE_STRATEGY;

type Payload = Record<string, unknown>;
const seed = (): Payload => structuredClone(SEED);
const ind = (name: string, params: Record<string, unknown>): Payload => ({
  ...seed(),
  indicators: [{ name, params }],
});

function fieldOf(payload: unknown): string {
  try {
    parseStrategySpec(payload);
  } catch (err) {
    if (err instanceof StrategyInvalidError && err.code === 'STRATEGY_INVALID') return err.field;
    throw err;
  }
  throw new Error('parsed');
}

describe('strategy spec', () => {
  it('parses the smoke scenario strategy payload with defaults', () => {
    expect(parseStrategySpec(JSON.parse(JSON.stringify(SEED)))).toEqual({
      name: 'MA(20,50) binance:spot:BTCUSDT 1m',
      instrumentId: { marketId: 1, symbol: 'BTCUSDT' },
      instrumentKey: 'binance:spot:BTCUSDT',
      marketType: 'spot',
      timeframe: '1m',
      indicators: [{ name: 'MA', params: { fast: 20, slow: 50 } }],
      signalTemplate: 'MA(20,50)',
      template: { kind: 'MA', fast: 20, slow: 50 },
      params: { initialEquity: 10_000, positionSize: 1 },
    });
  });

  it('takes a name, paper-trading params, whitespace in the template, and round-trips', () => {
    const spec = parseStrategySpec({
      ...seed(),
      name: '  my cross ',
      timeframe: '5m',
      signal_template: ' MA( 20, 50 )',
      params: { initial_equity: 500, position_size: 0.25 },
    });
    expect(spec.name).toBe('my cross');
    expect(spec.signalTemplate).toBe('MA(20,50)');
    expect(spec.params).toEqual({ initialEquity: 500, positionSize: 0.25 });
    expect(parseStrategySpec(strategySpecToPayload(spec))).toEqual(spec);
  });

  it('fills RSI defaults in the indicator entry', () => {
    const spec = parseStrategySpec({ ...ind('RSI', { period: 14 }), signal_template: 'RSI(14)' });
    expect(spec.indicators).toEqual([{ name: 'RSI', params: { period: 14, lower: 30, upper: 70 } }]);
    expect(
      parseStrategySpec({ ...ind('RSI', { period: 14, lower: 30, upper: 70 }), signal_template: 'RSI(14)' })
        .template,
    ).toEqual(spec.template);
    expect(
      parseStrategySpec({ ...ind('BB', { period: 20, k: 2.5 }), signal_template: 'BB(20,2.5)' }).template,
    ).toEqual({
      kind: 'BB',
      period: 20,
      k: 2.5,
    });
  });

  it.each<[string, unknown, string]>([
    ['not an object', 'MA(20,50)', '(root)'],
    ['unknown field', { ...seed(), strategy_id: 'x' }, 'strategy_id'],
    ['missing instrument_id', { ...seed(), instrument_id: undefined }, 'instrument_id'],
    [
      'market_id not an integer',
      { ...seed(), instrument_id: { market_id: 1.5, symbol: 'BTCUSDT' } },
      'instrument_id.market_id',
    ],
    [
      'extra key in instrument_id',
      { ...seed(), instrument_id: { market_id: 1, symbol: 'BTCUSDT', x: 1 } },
      'instrument_id.x',
    ],
    ['bad instrument key', { ...seed(), instrument_key: 'Binance:spot:BTCUSDT' }, 'instrument_key'],
    [
      'symbol differs from the key',
      { ...seed(), instrument_id: { market_id: 1, symbol: 'ETHUSDT' } },
      'instrument_id.symbol',
    ],
    ['market type differs from the key', { ...seed(), market_type: 'futures' }, 'market_type'],
    ['timeframe', { ...seed(), timeframe: '15m' }, 'timeframe'],
    ['empty name', { ...seed(), name: '  ' }, 'name'],
    ['no indicators', { ...seed(), indicators: [] }, 'indicators'],
    ['template junk', { ...seed(), signal_template: 'MA(20,50' }, 'signal_template'],
    ['template unknown', { ...seed(), signal_template: 'MACD(12,26)' }, 'signal_template'],
    ['template not a string', { ...seed(), signal_template: 5 }, 'signal_template'],
    ['indicator name unknown', ind('MACD', { fast: 20, slow: 50 }), 'indicators.0.name'],
    ['indicator param a string', ind('MA', { fast: '20', slow: 50 }), 'indicators.0.params.fast'],
    ['indicator param unknown', ind('MA', { fast: 20, slow: 50, period: 3 }), 'indicators.0.params.period'],
    ['indicator param missing', ind('MA', { fast: 20 }), 'indicators.0.params.slow'],
    ['indicator fast >= slow', ind('MA', { fast: 50, slow: 20 }), 'indicators.0.params.fast'],
    ['indicator period too long', ind('MA', { fast: 20, slow: 5000 }), 'indicators.0.params.slow'],
    ['indicator not the template one', ind('EMA', { fast: 20, slow: 50 }), 'indicators.0.name'],
    ['indicator params differ', ind('MA', { fast: 20, slow: 60 }), 'indicators.0.params.slow'],
    [
      'RSI thresholds differ from defaults',
      { ...ind('RSI', { period: 14, lower: 25 }), signal_template: 'RSI(14)' },
      'indicators.0.params.lower',
    ],
    [
      'a second indicator',
      { ...seed(), indicators: [SEED.indicators[0], { name: 'RSI', params: { period: 14 } }] },
      'indicators.1',
    ],
    ['entry without params', { ...seed(), indicators: [{ name: 'MA' }] }, 'indicators.0.params'],
    ['initial_equity zero', { ...seed(), params: { initial_equity: 0 } }, 'params.initial_equity'],
    ['position_size above 1', { ...seed(), params: { position_size: 1.5 } }, 'params.position_size'],
    ['unknown paper param', { ...seed(), params: { fee: 0.001 } }, 'params.fee'],
  ])('%s -> %s', (_name, payload, field) => {
    expect(fieldOf(payload)).toBe(field);
  });

  it('names the template problem and keeps its position', () => {
    try {
      parseStrategySpec({ ...seed(), signal_template: 'MA(20;50)' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(StrategyInvalidError);
      expect((err as StrategyInvalidError).position).toBe(5);
      expect((err as StrategyInvalidError).message).toMatch(
        /^strategy signal_template: expected "," or "\)" at position 5/,
      );
    }
  });
});
