import { describe, expect, it } from 'vitest';
import { parseVenueInstrument } from '../../src/marketdata/kit/options.js';
import type { RestResponse, SocketPlan } from '../../src/marketdata/kit/venue.js';
import { bybitAdapter, type BybitInstrument } from '../../src/marketdata/sources/bybit/adapter.js';
import { parseBybitMessage } from '../../src/marketdata/sources/bybit/messages.js';
import { resolveBybitUrls } from '../../src/marketdata/sources/bybit/options.js';
import { ConfigError } from '../../src/util/errors.js';

const M = 60_000;
const T = Date.UTC(2026, 11, 3, 12, 0);
const URLS = resolveBybitUrls({});

function kline(confirm: boolean, over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    topic: 'kline.1.BTCUSDT',
    data: [
      {
        start: T,
        end: confirm ? T + M - 1 : T + 30_000,
        interval: '1',
        open: '16649.5',
        close: '16677',
        high: '16677',
        low: '16608',
        volume: '2.081',
        turnover: '34666.4005',
        confirm,
        timestamp: T + 30_000,
        ...over,
      },
    ],
    ts: T + 30_000,
    type: 'snapshot',
  });
}

function book(type: 'snapshot' | 'delta', b: string[][], a: string[][]): string {
  return JSON.stringify({
    topic: 'orderbook.1.BTCUSDT',
    type,
    ts: T + 5,
    data: { s: 'BTCUSDT', b, a, u: 18521288, seq: 7961638724 },
    cts: T + 3,
  });
}

function reply(status: number, body: unknown, headers: Record<string, string> = {}): RestResponse {
  return {
    status,
    headers: new Headers(headers),
    body: typeof body === 'string' ? body : JSON.stringify(body),
    receivedAt: T,
  };
}

const instruments = (...keys: string[]): BybitInstrument[] =>
  keys.map((k, i) => parseVenueInstrument(bybitAdapter, k, `market_data.instruments[${i}]`, 0));

describe('Bybit socket messages', () => {
  it('reads an open and a closed 1m kline with its confirm flag and base/quote volumes', () => {
    const values = {
      openTime: T,
      open: 16649.5,
      high: 16677,
      low: 16608,
      close: 16677,
      volumeBase: 2.081,
      volumeQuote: 34666.4005,
    };
    expect(parseBybitMessage(kline(false))).toEqual({
      type: 'candle',
      symbol: 'BTCUSDT',
      closed: false,
      values,
    });
    expect(parseBybitMessage(kline(true))).toEqual({
      type: 'candle',
      symbol: 'BTCUSDT',
      closed: true,
      values,
    });
  });

  it('prefers the closing entry of a frame that carries two', () => {
    const closing = JSON.parse(kline(true)) as { data: Record<string, unknown>[] };
    const next = { ...closing.data[0], start: T + M, end: T + M + 1000, confirm: false };
    const frame = JSON.stringify({ ...closing, data: [closing.data[0], next] });
    expect(parseBybitMessage(frame)).toMatchObject({ type: 'candle', closed: true, values: { openTime: T } });
  });

  it('refuses a kline of another interval, off the minute, or with high/low not enclosing', () => {
    expect(parseBybitMessage(kline(true, { interval: '5' }))).toMatchObject({ type: 'invalid' });
    expect(parseBybitMessage(kline(true, { start: T + 1 }))).toMatchObject({ type: 'invalid' });
    expect(parseBybitMessage(kline(true, { high: '16000' }))).toMatchObject({ type: 'invalid' });
    expect(parseBybitMessage(kline(true, { volume: '-1' }))).toMatchObject({ type: 'invalid' });
    expect(parseBybitMessage(kline(true, { end: T + 2 * M }))).toMatchObject({ type: 'invalid' });
  });

  it('turns a level-1 book snapshot or a two-sided delta into a quote stamped with the match time', () => {
    expect(parseBybitMessage(book('snapshot', [['16493.5', '0.006']], [['16611', '0.029']]))).toEqual({
      type: 'quote',
      symbol: 'BTCUSDT',
      bid: 16493.5,
      ask: 16611,
      exchangeTsMs: T + 3,
    });
    expect(parseBybitMessage(book('delta', [['16494', '1']], [['16610', '2']]))).toMatchObject({
      type: 'quote',
      bid: 16494,
      ask: 16610,
    });
  });

  it('gives no quote for a one-sided delta and refuses a crossed book', () => {
    expect(parseBybitMessage(book('delta', [['16494', '1']], []))).toEqual({ type: 'ack' });
    expect(parseBybitMessage(book('delta', [['16494', '0']], [['16610', '2']]))).toEqual({ type: 'ack' });
    expect(parseBybitMessage(book('snapshot', [['16700', '1']], [['16610', '2']]))).toMatchObject({
      type: 'invalid',
    });
  });

  it('reads the pong of spot, of linear and of the option/spread shape', () => {
    const spot = { success: true, ret_msg: 'pong', conn_id: '0970e817', op: 'ping' };
    const linear = { success: true, ret_msg: 'pong', conn_id: '465772b1', req_id: '', op: 'ping' };
    const other = { args: ['1672916271846'], op: 'pong' };
    for (const p of [spot, linear, other])
      expect(parseBybitMessage(JSON.stringify(p))).toEqual({ type: 'pong' });
  });

  it('acknowledges a subscribe and reports a refused one as the rejected symbol', () => {
    const ok = { success: true, ret_msg: 'subscribe', conn_id: 'c', req_id: '0', op: 'subscribe' };
    expect(parseBybitMessage(JSON.stringify(ok))).toEqual({ type: 'ack' });
    const refused = {
      success: false,
      ret_msg: 'Invalid symbol :[kline.1.NOPEUSDT,orderbook.1.NOPEUSDT]',
      conn_id: 'c',
      req_id: '1',
      op: 'subscribe',
    };
    expect(parseBybitMessage(JSON.stringify(refused))).toMatchObject({
      type: 'rejected',
      symbol: 'NOPEUSDT',
    });
  });

  it('traces a refusal that names no topic to its request when that request held one symbol', () => {
    const [plan] = bybitAdapter.sockets(instruments('bybit:spot:NOPEUSDT'), URLS);
    const refused = { success: false, ret_msg: 'params error', conn_id: 'c', req_id: '0', op: 'subscribe' };
    expect(plan && bybitAdapter.parseMessage(JSON.stringify(refused), plan)).toMatchObject({
      type: 'rejected',
      symbol: 'NOPEUSDT',
    });
    const [many] = bybitAdapter.sockets(instruments('bybit:spot:AAAUSDT', 'bybit:spot:BBBUSDT'), URLS);
    expect(many && bybitAdapter.parseMessage(JSON.stringify(refused), many)).toMatchObject({
      type: 'invalid',
    });
  });

  it('reports bad frames as invalid, never throwing', () => {
    for (const text of [
      'not json',
      '[1,2]',
      '{}',
      '{"topic":"publicTrade.BTCUSDT","data":[]}',
      '{"topic":"kline.1.BTCUSDT","data":[]}',
      '{"topic":"kline.1.BTCUSDT","data":[{"start":"x"}]}',
      '{"topic":"orderbook.1.BTCUSDT","type":"snapshot","data":{"s":"ETHUSDT","b":[],"a":[]}}',
      '{"op":"auth","success":true}',
      '{"success":false,"ret_msg":"Failed to decode incoming data","conn_id":"c","req_id":"","op":""}',
    ]) {
      expect(parseBybitMessage(text)).toMatchObject({ type: 'invalid' });
    }
  });
});

describe('Bybit REST replies', () => {
  const [btc] = instruments('bybit:linear:BTCUSDT');
  const parseRows = (r: RestResponse): ReturnType<typeof bybitAdapter.history.parse> => {
    if (!btc) throw new Error('no instrument');
    return bybitAdapter.history.parse(r, btc);
  };

  it('asks for 1m klines of the range with its end inclusive and at most 1000 rows', () => {
    if (!btc) throw new Error('no instrument');
    const req = bybitAdapter.history.request(btc, T, T + 5 * M, URLS, T + 10 * M);
    const url = new URL(req.url);
    expect(url.origin + url.pathname).toBe('https://api.bybit.com/v5/market/kline');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      category: 'linear',
      symbol: 'BTCUSDT',
      interval: '1',
      start: String(T),
      end: String(T + 5 * M - 1),
      limit: '5',
    });
    expect(bybitAdapter.history.pageMinutes).toBe(1000);
  });

  it('reads rows newest first as Bybit sends them', () => {
    const list = [
      [String(T + M), '101', '102', '100', '101.5', '3', '304.5'],
      [String(T), '100', '101', '99.5', '100.5', '2.5', '250.625'],
    ];
    const out = parseRows(reply(200, { retCode: 0, retMsg: 'OK', result: { list } }));
    expect(out).toEqual({
      kind: 'ok',
      value: [
        {
          ok: true,
          values: {
            openTime: T + M,
            open: 101,
            high: 102,
            low: 100,
            close: 101.5,
            volumeBase: 3,
            volumeQuote: 304.5,
          },
        },
        {
          ok: true,
          values: {
            openTime: T,
            open: 100,
            high: 101,
            low: 99.5,
            close: 100.5,
            volumeBase: 2.5,
            volumeQuote: 250.625,
          },
        },
      ],
    });
  });

  it('keeps a bad row as a bad row, the others as they are', () => {
    const list = [
      [String(T + 1), '1', '1', '1', '1', '1', '1'],
      [String(T), '100', '99', '100', '100', '1', '100'],
      ['x'],
      [String(T - M), '100', '101', '99', '100', '0', '0'],
    ];
    const out = parseRows(reply(200, { retCode: 0, retMsg: 'OK', result: { list } }));
    expect(out.kind === 'ok' && out.value.map((r) => r.ok)).toEqual([false, false, false, true]);
  });

  it("turns Bybit's rate-limit answers into rate-limited", () => {
    const tooMany = reply(
      200,
      { retCode: 10006, retMsg: 'Too many visits!', result: {} },
      { 'X-Bapi-Limit': '10', 'X-Bapi-Limit-Status': '0', 'X-Bapi-Limit-Reset-Timestamp': String(T + 1500) },
    );
    expect(parseRows(tooMany)).toEqual({
      kind: 'rate-limited',
      retryAfterMs: 1500,
      reason: 'retCode 10006: Too many visits!',
    });
    expect(parseRows(reply(200, { retCode: 10018, retMsg: 'ip limit', result: {} }))).toMatchObject({
      kind: 'rate-limited',
      retryAfterMs: null,
    });
    expect(parseRows(reply(403, 'access too frequent'))).toMatchObject({
      kind: 'rate-limited',
      retryAfterMs: 600_000,
    });
    expect(bybitAdapter.symbols?.parse(reply(429, '', { 'Retry-After': '3' }))).toMatchObject({
      kind: 'rate-limited',
      retryAfterMs: 3000,
    });
  });

  it('retries server trouble and gives up on a refused request', () => {
    expect(parseRows(reply(502, 'bad gateway'))).toMatchObject({ kind: 'retryable' });
    expect(parseRows(reply(200, { retCode: 10016, retMsg: 'Server error', result: {} }))).toMatchObject({
      kind: 'retryable',
    });
    expect(
      parseRows(reply(200, { retCode: 10001, retMsg: 'Not supported symbols', result: {} })),
    ).toMatchObject({ kind: 'failed', reason: 'retCode 10001: Not supported symbols' });
    expect(parseRows(reply(200, '<html>'))).toMatchObject({ kind: 'failed' });
  });

  it('lists the symbols of a market, one page of 1000 for linear', () => {
    const symbols = bybitAdapter.symbols;
    if (!symbols) throw new Error('no symbol list');
    expect(symbols.request('spot', URLS).url).toBe(
      'https://api.bybit.com/v5/market/instruments-info?category=spot',
    );
    expect(symbols.request('linear', URLS).url).toBe(
      'https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000',
    );
    const body = {
      retCode: 0,
      retMsg: 'OK',
      result: { list: [{ symbol: 'BTCUSDT' }, { symbol: 'ETHUSDT' }] },
    };
    expect(symbols.parse(reply(200, body))).toEqual({ kind: 'ok', value: new Set(['BTCUSDT', 'ETHUSDT']) });
    const full = Array.from({ length: 1000 }, (_, i) => ({ symbol: `S${i}USDT` }));
    const cut = { retCode: 0, retMsg: 'OK', result: { list: full, nextPageCursor: 'next' } };
    expect(symbols.parse(reply(200, cut))).toMatchObject({ kind: 'failed' });
  });
});

describe('Bybit instruments and sockets', () => {
  it('reads spot and linear keys', () => {
    expect(
      bybitAdapter.parseInstrument('bybit:linear:1000PEPEUSDT', 'market_data.instruments[0]', 7),
    ).toEqual({
      spec: { instrumentKey: 'bybit:linear:1000PEPEUSDT', symbol: '1000PEPEUSDT', marketId: 7 },
      market: 'linear',
      symbol: '1000PEPEUSDT',
    });
  });

  it('refuses keys breaking the rules with a ConfigError naming the key', () => {
    for (const key of [
      'binance:spot:BTCUSDT',
      'bybit:inverse:BTCUSD',
      'bybit:spot:BTC.USDT',
      'bybit:spot:btcusdt',
    ]) {
      let caught: unknown;
      try {
        parseVenueInstrument(bybitAdapter, key, 'market_data.instruments[3]', 0);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).key).toBe('market_data.instruments[3]');
    }
  });

  it('refuses a URL that is not one with a ConfigError naming its config key', () => {
    expect(() => resolveBybitUrls({ wsUrl: 'https://stream.bybit.com' })).toThrow(
      expect.objectContaining({ key: 'market_data.sources.bybit.ws_url' }),
    );
    expect(() => resolveBybitUrls({ restUrl: 'nope' })).toThrow(
      expect.objectContaining({ key: 'market_data.sources.bybit.rest_url' }),
    );
  });

  it('derives the spot and linear sockets from ws_url, within the args and topic caps', () => {
    const keys = [...Array.from({ length: 230 }, (_, i) => `bybit:spot:S${i}USDT`), 'bybit:linear:BTCUSDT'];
    const plans: readonly SocketPlan<BybitInstrument>[] = bybitAdapter.sockets(
      instruments(...keys),
      resolveBybitUrls({ wsUrl: 'ws://127.0.0.1:9/' }),
    );
    expect(plans.map((p) => [p.label, p.url, p.instruments.length])).toEqual([
      ['spot', 'ws://127.0.0.1:9/v5/public/spot', 100],
      ['spot#2', 'ws://127.0.0.1:9/v5/public/spot', 100],
      ['spot#3', 'ws://127.0.0.1:9/v5/public/spot', 30],
      ['linear', 'ws://127.0.0.1:9/v5/public/linear', 1],
    ]);
    for (const p of plans) {
      const args = p.subscribe.map((f) => (JSON.parse(f) as { op: string; args: string[] }).args);
      expect(args.every((a) => a.length <= 10)).toBe(true);
      expect(args.flat()).toEqual(
        p.instruments.flatMap((i) => [`kline.1.${i.symbol}`, `orderbook.1.${i.symbol}`]),
      );
      expect(JSON.stringify(args.flat()).length).toBeLessThan(21_000);
    }
  });
});
