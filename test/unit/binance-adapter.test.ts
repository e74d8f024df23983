import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/util/errors.js';
import { binanceAdapter, BINANCE_LIMITS } from '../../src/marketdata/sources/binance/adapter.js';
import { binanceVenueMessage } from '../../src/marketdata/sources/binance/messages.js';
import { resolveBinanceUrls } from '../../src/marketdata/sources/binance/options.js';
import {
  klinesRequest,
  klinesWeight,
  parseExchangeInfo,
  parseKlinesReply,
} from '../../src/marketdata/sources/binance/rest.js';
import type { RestResponse } from '../../src/marketdata/kit/venue.js';

const M = 60_000;
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
const urls = resolveBinanceUrls({
  wsUrl: 'ws://s',
  futuresWsUrl: 'ws://f',
  restUrl: 'http://s',
  futuresRestUrl: 'http://f',
});

function reply(status: number, body: unknown, headers: Record<string, string> = {}): RestResponse {
  return { status, headers: new Headers(headers), body: JSON.stringify(body), receivedAt: T0 };
}

describe('binance adapter (no sockets)', () => {
  it('reads keys: the symbol rule is its own, the market from the key', () => {
    const i = binanceAdapter.parseInstrument('binance:futures:BTCUSDT_250926', 'k', 3);
    expect(i).toEqual({
      spec: { instrumentKey: 'binance:futures:BTCUSDT_250926', symbol: 'BTCUSDT_250926', marketId: 3 },
      market: 'futures',
      symbol: 'BTCUSDT_250926',
      streamSymbol: 'btcusdt_250926',
    });
    expect(() => binanceAdapter.parseInstrument('binance:spot:B', 'where', 0)).toThrow(ConfigError);
  });

  it('one combined-stream socket per market, more past 1024 streams, streams in the URL', () => {
    const keys = [
      ...Array.from({ length: 513 }, (_, n) => `binance:spot:S${n}USDT`),
      'binance:futures:BTCUSDT',
    ];
    const plans = binanceAdapter.sockets(
      keys.map((k) => binanceAdapter.parseInstrument(k, 'k', 0)),
      urls,
    );
    expect(plans.map((p) => [p.label, p.instruments.length, p.subscribe.length])).toEqual([
      ['spot', 512, 0],
      ['spot#2', 1, 0],
      ['futures', 1, 0],
    ]);
    expect(plans[2]?.url).toBe('ws://f/stream?streams=btcusdt@kline_1m/btcusdt@bookTicker');
    for (const p of plans) {
      expect(new URL(p.url).searchParams.get('streams')?.split('/').length).toBeLessThanOrEqual(
        BINANCE_LIMITS.topicsPerConnection,
      );
    }
  });

  it('klines calls carry the weight Binance charges', () => {
    expect(klinesWeight('spot', 1000)).toBe(2);
    expect([99, 100, 499, 500, 1000, 1500].map((l) => klinesWeight('futures', l))).toEqual([
      1, 2, 2, 5, 5, 10,
    ]);
    const i = binanceAdapter.parseInstrument('binance:futures:BTCUSDT', 'k', 0);
    const req = binanceAdapter.history.request(i, T0, T0 + 600 * M, urls, T0 + 601 * M);
    expect(req).toEqual(klinesRequest('http://f', 'futures', 'BTCUSDT', T0, T0 + 600 * M));
    expect(req.weight).toBe(5);
    expect(new URL(req.url).searchParams.get('endTime')).toBe(String(T0 + 600 * M - 1));
  });

  it('klines replies: rows, a 429 with Retry-After, a body that is not rows', () => {
    const row = [T0, '1.5', '2.0', '1.0', '1.8', '10', T0 + M - 1, '15', 7, '5', '7.5', '0'];
    expect(parseKlinesReply(reply(200, [row, ['x']]))).toMatchObject({
      kind: 'ok',
      value: [
        {
          ok: true,
          values: { openTime: T0, open: 1.5, high: 2, low: 1, close: 1.8, volumeBase: 10, volumeQuote: 15 },
        },
        { ok: false },
      ],
    });
    expect(parseKlinesReply(reply(429, { code: -1003 }, { 'Retry-After': '2' }))).toMatchObject({
      kind: 'rate-limited',
      retryAfterMs: 2000,
    });
    expect(parseKlinesReply(reply(200, { code: -1 }))).toMatchObject({ kind: 'failed' });
  });

  it('exchangeInfo lists symbols; weight 20 on spot, 1 on futures', () => {
    expect(binanceAdapter.symbols?.request('spot', urls)).toEqual({
      url: 'http://s/api/v3/exchangeInfo',
      weight: 20,
    });
    expect(binanceAdapter.symbols?.request('futures', urls)).toEqual({
      url: 'http://f/fapi/v1/exchangeInfo',
      weight: 1,
    });
    const got = parseExchangeInfo(
      reply(200, { symbols: [{ symbol: 'BTCUSDT', status: 'TRADING' }, { symbol: 'ETHBTC' }] }),
    );
    expect(got.kind === 'ok' ? [...got.value] : got).toEqual(['BTCUSDT', 'ETHBTC']);
    expect(parseExchangeInfo(reply(200, { nope: 1 }))).toMatchObject({ kind: 'failed' });
  });

  it('messages as the kit reads them: x is the closed flag, serverShutdown a reconnect, replies acks', () => {
    expect(
      binanceVenueMessage(
        JSON.stringify({ stream: '!serverShutdown', data: { e: 'serverShutdown', E: T0 } }),
      ),
    ).toEqual({ type: 'reconnect', reason: 'serverShutdown' });
    expect(binanceVenueMessage('{"result":null,"id":1}')).toEqual({ type: 'ack' });
    expect(binanceVenueMessage('nope')).toEqual({ type: 'invalid', reason: 'not JSON' });
    const data = {
      e: 'kline',
      s: 'BTCUSDT',
      k: {
        t: T0,
        T: T0 + M - 1,
        s: 'BTCUSDT',
        i: '1m',
        o: '1',
        c: '1',
        h: '1',
        l: '1',
        v: '0',
        q: '0',
        x: false,
      },
    };
    expect(binanceVenueMessage(JSON.stringify({ stream: 'btcusdt@kline_1m', data }))).toEqual({
      type: 'candle',
      symbol: 'BTCUSDT',
      closed: false,
      values: { openTime: T0, open: 1, high: 1, low: 1, close: 1, volumeBase: 0, volumeQuote: 0 },
    });
  });
});
