/**
 * The `market_data` section's sources: `source` optional (one source per venue of the instruments),
 * the bybit and okx settings with their public defaults, and the errors naming the key at fault.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { marketDataSchema, sourcePlan } from '../../src/config/market-data.js';
import { ConfigError } from '../../src/util/errors.js';

const parse = (raw: unknown) => validateConfig(marketDataSchema, raw, 'market_data');

function configErrorKey(raw: unknown): string {
  try {
    parse(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.key;
    throw err;
  }
  throw new Error('no ConfigError');
}

describe('market_data sources', () => {
  it('defaults: the simulated source for the default sim instruments; every venue has its public URLs', () => {
    const md = parse({});
    expect(md.source).toBeUndefined();
    expect(sourcePlan(md)).toEqual([
      {
        kind: 'simulated',
        instruments: [
          { key: 'sim:spot:BTCUSDT', marketId: undefined, configKey: 'market_data.instruments[0]' },
          { key: 'sim:fx:XAUUSD', marketId: undefined, configKey: 'market_data.instruments[1]' },
        ],
      },
    ]);
    expect(md.sources.binance).toEqual({
      ws_url: 'wss://stream.binance.com:9443',
      rest_url: 'https://api.binance.com',
      futures_ws_url: 'wss://fstream.binance.com',
      futures_rest_url: 'https://fapi.binance.com',
    });
    expect(md.sources.bybit).toEqual({ ws_url: 'wss://stream.bybit.com', rest_url: 'https://api.bybit.com' });
    expect(md.sources.okx).toEqual({
      ws_url: 'wss://ws.okx.com:8443/ws/v5/public',
      business_ws_url: 'wss://ws.okx.com:8443/ws/v5/business',
      rest_url: 'https://www.okx.com',
    });
  });

  it('without source: one source per venue present, in order of first appearance, market ids kept', () => {
    const md = parse({
      instruments: [
        'bybit:spot:BTCUSDT',
        { key: 'binance:spot:BTCUSDT', market_id: 7 },
        'sim:spot:ETHUSDT',
        'okx:swap:BTC-USDT-SWAP',
        'bybit:linear:ETHUSDT',
      ],
      sources: { okx: { rest_url: 'http://127.0.0.1:9' } },
    });
    const plan = sourcePlan(md);
    expect(plan.map((p) => [p.kind, p.instruments.map((i) => i.configKey)])).toEqual([
      ['bybit', ['market_data.instruments[0]', 'market_data.instruments[4]']],
      ['binance', ['market_data.instruments[1]']],
      ['simulated', ['market_data.instruments[2]']],
      ['okx', ['market_data.instruments[3]']],
    ]);
    expect(plan[1]?.instruments[0]?.marketId).toBe(7);
    expect(md.sources.okx.rest_url).toBe('http://127.0.0.1:9');
    expect(md.sources.okx.ws_url).toBe('wss://ws.okx.com:8443/ws/v5/public');
  });

  it('source simulated or replay serves every key whatever its venue; source binance (old configs) still works', () => {
    const keys = ['binance:spot:BTCUSDT', 'okx:spot:BTC-USDT', 'sim:fx:XAUUSD'];
    expect(sourcePlan(parse({ source: 'simulated', instruments: keys })).map((p) => p.kind)).toEqual([
      'simulated',
    ]);
    expect(sourcePlan(parse({ source: 'replay', instruments: keys }))[0]?.instruments).toHaveLength(3);
    const old = parse({
      source: 'binance',
      instruments: ['binance:spot:BTCUSDT', 'binance:futures:BTCUSDT'],
    });
    expect(sourcePlan(old)).toEqual([
      {
        kind: 'binance',
        instruments: [
          { key: 'binance:spot:BTCUSDT', marketId: undefined, configKey: 'market_data.instruments[0]' },
          { key: 'binance:futures:BTCUSDT', marketId: undefined, configKey: 'market_data.instruments[1]' },
        ],
      },
    ]);
  });

  it('a key of a venue without a source, or of another venue than source, is an error naming market_data.instruments[i]', () => {
    expect(configErrorKey({ instruments: ['binance:spot:BTCUSDT', 'kraken:spot:XBTUSD'] })).toBe(
      'market_data.instruments[1]',
    );
    expect(() => parse({ instruments: ['kraken:spot:XBTUSD'] })).toThrow(/no source for venue "kraken"/);
    expect(
      configErrorKey({ source: 'binance', instruments: ['binance:spot:BTCUSDT', 'bybit:spot:BTCUSDT'] }),
    ).toBe('market_data.instruments[1]');
    expect(configErrorKey({ source: 'binance', instruments: ['sim:spot:BTCUSDT'] })).toBe(
      'market_data.instruments[0]',
    );
  });

  it('the venue settings are strict and their URLs checked, naming the key', () => {
    expect(configErrorKey({ sources: { bybit: { ws_url: 'https://x' } } })).toBe(
      'market_data.sources.bybit.ws_url',
    );
    expect(configErrorKey({ sources: { bybit: { rest_url: 'ftp://x' } } })).toBe(
      'market_data.sources.bybit.rest_url',
    );
    expect(configErrorKey({ sources: { bybit: { linear_ws_url: 'wss://x' } } })).toBe(
      'market_data.sources.bybit',
    );
    expect(configErrorKey({ sources: { okx: { business_ws_url: 'http://x' } } })).toBe(
      'market_data.sources.okx.business_ws_url',
    );
    expect(configErrorKey({ sources: { okx: { rest_url: 'wss://x' } } })).toBe(
      'market_data.sources.okx.rest_url',
    );
    expect(configErrorKey({ sources: { kraken: {} } })).toBe('market_data.sources');
    expect(configErrorKey({ source: 'kraken' })).toBe('market_data.source');
  });
});
