import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from '../../src/util/errors.js';
import { describeStream, groups, streams, validateInstrumentKey } from '../../src/contracts/catalog.js';

describe('stream catalog', () => {
  it('builds the contract names of docs/contracts.md', () => {
    expect(streams.candles('1m', 'binance:spot:BTCUSDT')).toBe('md.candles.1m.binance:spot:BTCUSDT');
    expect(streams.candles('5m', 'sim:fx:XAUUSD')).toBe('md.candles.5m.sim:fx:XAUUSD');
    expect(streams.prices('binance:spot:BTCUSDT')).toBe('md.prices.binance:spot:BTCUSDT');
    expect(streams.feedStatus('binance')).toBe('md.status.binance');
    expect(streams.strategyEvents('00000000-0000-0000-0000-000000001111')).toBe(
      'strategy.events.v1.user.00000000-0000-0000-0000-000000001111',
    );
    expect(streams.strategyMetrics('42')).toBe('strategy.metrics.v1.user.42');
    expect(streams.serviceCommands('backtesting')).toBe('mgmt:backtesting:commands');
    expect(streams.serviceResults('backtesting')).toBe('backtesting:mgmt:results');
    expect(streams.serviceStatus('backtesting')).toBe('backtesting:status');
    expect(streams.deadLetters('md.candles.1m.binance:spot:BTCUSDT')).toBe(
      'dlq:{md.candles.1m.binance:spot:BTCUSDT}',
    );
    expect(groups.strategy('mean_reversion')).toBe('strategy.mean_reversion');
  });

  it('reads names back into entries with retention and ID mode', () => {
    expect(describeStream('md.candles.1m.binance:spot:BTCUSDT')).toMatchObject({
      kind: 'candles',
      idMode: 'deterministic',
      retention: { kind: 'maxlen', maxLen: 10080 },
      parts: { timeframe: '1m', instrument: 'binance:spot:BTCUSDT' },
    });
    expect(describeStream('md.prices.sim:fx:XAUUSD')?.kind).toBe('prices');
    expect(describeStream('mgmt:strategy:commands')?.parts).toEqual({ service: 'strategy' });
    expect(describeStream('dlq:{mgmt:strategy:commands}')).toMatchObject({
      kind: 'dead-letters',
      parts: { stream: 'mgmt:strategy:commands' },
    });
    expect(describeStream('something-else')).toBeNull();
    expect(describeStream('md.candles.1m.not a key')).toBeNull();
  });

  it.each([
    'BINANCE:spot:BTCUSDT',
    'binance:spot:btcusdt',
    'binance:spot',
    'binance:spot:BTC USDT',
    'binance:spot:BTC*',
    'binance:spot:{BTC}',
    `binance:spot:${'A'.repeat(100)}`,
    'binance:spot:BTC\nUSDT',
    '',
  ])('refuses the hostile or malformed instrument key %j', (key) => {
    expect(() => validateInstrumentKey(key)).toThrow(InvalidKeyError);
    expect(() => streams.candles('1m', key)).toThrow(expect.objectContaining({ code: 'INVALID_KEY' }));
  });

  it('refuses unknown timeframes and bad names', () => {
    expect(() => streams.candles('7m', 'sim:spot:BTCUSDT')).toThrow(InvalidKeyError);
    expect(() => streams.serviceCommands('Bad Name')).toThrow(InvalidKeyError);
    expect(() => streams.strategyEvents('../etc')).toThrow(InvalidKeyError);
    expect(() => streams.deadLetters('dlq:{x}')).toThrow(InvalidKeyError);
  });
});
