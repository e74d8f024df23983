/**
 * The OKX adapter's pure parts: socket frames, REST replies and paging, instId rules, socket plans
 * (docs/venues/okx.md). No network.
 */
import { describe, expect, it } from 'vitest';
import { describeStream, streams } from '../../src/contracts/catalog.js';
import type { RestResponse, SocketPlan } from '../../src/marketdata/kit/venue.js';
import { okxAdapter, type OkxUrls } from '../../src/marketdata/sources/okx/adapter.js';
import type { OkxInstrument } from '../../src/marketdata/sources/okx/instruments.js';
import { ConfigError } from '../../src/util/errors.js';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 3, 12, 0);
const URLS: OkxUrls = {
  wsUrl: 'wss://ws.okx.com:8443/ws/v5/public',
  businessWsUrl: 'wss://ws.okx.com:8443/ws/v5/business',
  restUrl: 'https://www.okx.com',
};

function instrument(key: string): OkxInstrument {
  return okxAdapter.parseInstrument(key, 'market_data.instruments[0]', 7);
}

const SPOT = instrument('okx:spot:BTC-USDT');
const SWAP = instrument('okx:swap:BTC-USDT-SWAP');
const [BUSINESS, PUBLIC] = okxAdapter.sockets([SPOT, SWAP], URLS) as [
  SocketPlan<OkxInstrument>,
  SocketPlan<OkxInstrument>,
];

function candlePush(instId: string, row: readonly string[]): string {
  return JSON.stringify({ arg: { channel: 'candle1m', instId }, data: [row] });
}

function response(status: number, body: unknown, headers: Record<string, string> = {}): RestResponse {
  return {
    status,
    headers: new Headers(headers),
    body: typeof body === 'string' ? body : JSON.stringify(body),
    receivedAt: T0,
  };
}

describe('OKX socket frames', () => {
  it('reads a candle1m push, open (confirm 0) and closed (confirm 1), spot volumes from vol and volCcyQuote', () => {
    const row = [String(T0), '100.5', '101', '99.5', '100.75', '2.5', '251.5', '251.5', '0'];
    expect(okxAdapter.parseMessage(candlePush('BTC-USDT', row), BUSINESS)).toEqual({
      type: 'candle',
      symbol: 'BTC-USDT',
      closed: false,
      values: {
        openTime: T0,
        open: 100.5,
        high: 101,
        low: 99.5,
        close: 100.75,
        volumeBase: 2.5,
        volumeQuote: 251.5,
      },
    });
    const closed = okxAdapter.parseMessage(candlePush('BTC-USDT', [...row.slice(0, 8), '1']), BUSINESS);
    expect(closed).toMatchObject({ type: 'candle', closed: true });
  });

  it('takes a swap candle base volume from volCcy (vol counts contracts)', () => {
    const row = [String(T0), '100', '101', '99', '100', '250', '2.5', '250', '1'];
    const m = okxAdapter.parseMessage(candlePush('BTC-USDT-SWAP', row), BUSINESS);
    expect(m).toMatchObject({ type: 'candle', symbol: 'BTC-USDT-SWAP', closed: true });
    if (m.type !== 'candle') throw new Error('not a candle');
    expect(m.values.volumeBase).toBe(2.5);
    expect(m.values.volumeQuote).toBe(250);
  });

  it('reads a tickers push as a quote with the exchange time', () => {
    const text = JSON.stringify({
      arg: { channel: 'tickers', instId: 'BTC-USDT-SWAP' },
      data: [
        {
          instType: 'SWAP',
          instId: 'BTC-USDT-SWAP',
          last: '100',
          bidPx: '99.9',
          askPx: '100.1',
          ts: String(T0),
        },
      ],
    });
    expect(okxAdapter.parseMessage(text, PUBLIC)).toEqual({
      type: 'quote',
      symbol: 'BTC-USDT-SWAP',
      bid: 99.9,
      ask: 100.1,
      exchangeTsMs: T0,
    });
  });

  it('answers pong, acks subscribe and channel-conn-count', () => {
    expect(okxAdapter.parseMessage('pong', PUBLIC)).toEqual({ type: 'pong' });
    const ack = { event: 'subscribe', arg: { channel: 'tickers', instId: 'BTC-USDT' }, connId: 'a4d3ae55' };
    expect(okxAdapter.parseMessage(JSON.stringify(ack), PUBLIC)).toEqual({ type: 'ack' });
    const count = { event: 'channel-conn-count', channel: 'orders', connCount: '2', connId: 'a4d3ae55' };
    expect(okxAdapter.parseMessage(JSON.stringify(count), PUBLIC)).toEqual({ type: 'ack' });
  });

  it('turns error 60018 naming a subscribed instId into rejected, other errors into invalid', () => {
    const refused = {
      event: 'error',
      code: '60018',
      msg: "Wrong URL or channel:candle1m,instId:BTC-USDT-SWAP doesn't exist. Please use the correct URL, channel and parameters referring to API document.",
      connId: 'a4d3ae55',
    };
    expect(okxAdapter.parseMessage(JSON.stringify(refused), BUSINESS)).toMatchObject({
      type: 'rejected',
      symbol: 'BTC-USDT-SWAP',
    });
    const other = { ...refused, msg: refused.msg.replace('BTC-USDT-SWAP', 'ETH-USDT') };
    expect(okxAdapter.parseMessage(JSON.stringify(other), BUSINESS)).toMatchObject({ type: 'invalid' });
    const generic = { event: 'error', code: '60012', msg: 'Invalid request', connId: 'a4d3ae55' };
    expect(okxAdapter.parseMessage(JSON.stringify(generic), BUSINESS)).toMatchObject({ type: 'invalid' });
  });

  it('turns notice 64008 into reconnect', () => {
    const notice = {
      event: 'notice',
      code: '64008',
      msg: 'The connection will soon be closed for a service upgrade. Please reconnect.',
      connId: 'a4d3ae55',
    };
    const m = okxAdapter.parseMessage(JSON.stringify(notice), PUBLIC);
    expect(m.type).toBe('reconnect');
    if (m.type === 'reconnect') expect(m.reason).toContain('64008');
  });

  it.each([
    ['not JSON', 'hello', BUSINESS],
    [
      'an unknown channel',
      JSON.stringify({ arg: { channel: 'books', instId: 'BTC-USDT' }, data: [] }),
      PUBLIC,
    ],
    [
      'a candle on the public socket',
      candlePush('BTC-USDT', [String(T0), '1', '1', '1', '1', '0', '0', '0', '1']),
      PUBLIC,
    ],
    [
      'a candle of an instrument not on this socket',
      candlePush('ETH-USDT', [String(T0), '1', '1', '1', '1', '0', '0', '0', '1']),
      BUSINESS,
    ],
    [
      'high below low',
      candlePush('BTC-USDT', [String(T0), '100', '99', '101', '100', '1', '1', '1', '1']),
      BUSINESS,
    ],
    [
      'an open time off the minute',
      candlePush('BTC-USDT', [String(T0 + 1), '1', '1', '1', '1', '0', '0', '0', '1']),
      BUSINESS,
    ],
    [
      'a bad confirm',
      candlePush('BTC-USDT', [String(T0), '1', '1', '1', '1', '0', '0', '0', 'yes']),
      BUSINESS,
    ],
    [
      'a negative price',
      candlePush('BTC-USDT', [String(T0), '-1', '1', '1', '1', '0', '0', '0', '1']),
      BUSINESS,
    ],
    [
      'two candles in one push',
      JSON.stringify({
        arg: { channel: 'candle1m', instId: 'BTC-USDT' },
        data: [
          [String(T0), '1', '1', '1', '1', '0', '0', '0', '1'],
          [String(T0 + MINUTE), '1', '1', '1', '1', '0', '0', '0', '0'],
        ],
      }),
      BUSINESS,
    ],
    [
      'a ticker with an empty bid',
      JSON.stringify({
        arg: { channel: 'tickers', instId: 'BTC-USDT' },
        data: [{ instId: 'BTC-USDT', bidPx: '', askPx: '100.1', ts: String(T0) }],
      }),
      PUBLIC,
    ],
    ['an unknown event', JSON.stringify({ event: 'login', code: '0', msg: '' }), PUBLIC],
  ])('reports %s as invalid', (_what, text, socket) => {
    expect(okxAdapter.parseMessage(text, socket).type).toBe('invalid');
  });
});

/** OKX's `after`/`before`/`limit` over the minutes `[first, last]`: newest first, bounds exclusive. */
function okxAnswer(url: string, first: number, last: number): number[] {
  const p = new URL(url).searchParams;
  const after = Number(p.get('after'));
  const before = Number(p.get('before'));
  const limit = Number(p.get('limit'));
  const out: number[] = [];
  for (let t = last; t >= first && out.length < limit; t -= MINUTE) if (t < after && t > before) out.push(t);
  return out;
}

describe('OKX REST candles', () => {
  it('pages a range longer than a page with after/before so every minute comes exactly once', () => {
    const now = T0 + 10 * MINUTE;
    const from = T0 - 250 * MINUTE;
    const to = T0; // exclusive
    const page = okxAdapter.history.pageMinutes;
    expect(page).toBe(100);
    const got: number[] = [];
    for (let start = from; start < to; start += page * MINUTE) {
      const end = Math.min(to, start + page * MINUTE);
      const req = okxAdapter.history.request(SPOT, start, end, URLS, now);
      expect(new URL(req.url).pathname).toBe('/api/v5/market/candles');
      expect(new URL(req.url).searchParams.get('after')).toBe(String(end));
      expect(new URL(req.url).searchParams.get('before')).toBe(String(start - 1));
      got.push(...okxAnswer(req.url, T0 - 2000 * MINUTE, now));
    }
    const want: number[] = [];
    for (let t = from; t < to; t += MINUTE) want.push(t);
    expect(got.sort((a, b) => a - b)).toEqual(want);
  });

  it('goes to history-candles for minutes older than what candles keeps, at twice the weight', () => {
    const now = T0;
    const recent = okxAdapter.history.request(SWAP, T0 - 120 * MINUTE, T0 - 20 * MINUTE, URLS, now);
    const old = okxAdapter.history.request(SWAP, T0 - 1_500 * MINUTE, T0 - 1_400 * MINUTE, URLS, now);
    expect(new URL(recent.url).pathname).toBe('/api/v5/market/candles');
    expect(recent.weight).toBe(1);
    expect(new URL(old.url).pathname).toBe('/api/v5/market/history-candles');
    expect(old.weight).toBe(2);
    expect(new URL(old.url).searchParams.get('instId')).toBe('BTC-USDT-SWAP');
    expect(new URL(old.url).searchParams.get('bar')).toBe('1m');
  });

  it('reads rows newest first with confirm, the open minute flagged not closed, a bad row kept as a failure', () => {
    const rows = [
      [String(T0 + MINUTE), '100', '100', '100', '100', '1', '100', '100', '0'],
      [String(T0), '100', '101', '99', '100.5', '2', '201', '201', '1'],
      [String(T0 - MINUTE), 'x', '101', '99', '100.5', '2', '201', '201', '1'],
    ];
    const out = okxAdapter.history.parse(response(200, { code: '0', msg: '', data: rows }), SPOT);
    expect(out.kind).toBe('ok');
    if (out.kind !== 'ok') return;
    expect(out.value).toHaveLength(3);
    expect(out.value[0]).toMatchObject({ ok: true, closed: false, values: { openTime: T0 + MINUTE } });
    expect(out.value[1]).toMatchObject({ ok: true, closed: true, values: { openTime: T0, volumeBase: 2 } });
    expect(out.value[2]).toMatchObject({ ok: false });
  });

  it('reads swap rows with base volume from volCcy', () => {
    const rows = [[String(T0), '100', '101', '99', '100.5', '300', '3', '301.5', '1']];
    const out = okxAdapter.history.parse(response(200, { code: '0', msg: '', data: rows }), SWAP);
    expect(out).toMatchObject({
      kind: 'ok',
      value: [{ ok: true, values: { volumeBase: 3, volumeQuote: 301.5 } }],
    });
  });

  it('treats HTTP 429 and code 50011 as the rate limit, busy codes and 5xx as retryable', () => {
    const tooMany = { code: '50011', msg: 'Too Many Requests', data: [] };
    // OKX sends no Retry-After: one whole 2 s window frees its budget.
    expect(okxAdapter.history.parse(response(429, tooMany), SPOT)).toMatchObject({
      kind: 'rate-limited',
      retryAfterMs: 2000,
    });
    expect(okxAdapter.history.parse(response(429, tooMany, { 'retry-after': '5' }), SPOT)).toMatchObject({
      kind: 'rate-limited',
      retryAfterMs: 5000,
    });
    const limited200 = { code: '50011', msg: 'Rate limit reached.', data: [] };
    expect(okxAdapter.history.parse(response(200, limited200), SPOT).kind).toBe('rate-limited');
    expect(okxAdapter.history.parse(response(429, ''), SPOT).kind).toBe('rate-limited');
    const busy = { code: '50013', msg: 'Systems are busy. Please try again later.', data: [] };
    expect(okxAdapter.history.parse(response(429, busy), SPOT).kind).toBe('retryable');
    const down = { code: '50001', msg: 'Service temporarily unavailable.', data: [] };
    expect(okxAdapter.history.parse(response(503, down), SPOT).kind).toBe('retryable');
    expect(okxAdapter.history.parse(response(502, '<html>bad gateway</html>'), SPOT).kind).toBe('retryable');
    const unknown = { code: '51001', msg: "Instrument ID doesn't exist.", data: [] };
    expect(okxAdapter.history.parse(response(200, unknown), SPOT).kind).toBe('failed');
    expect(okxAdapter.history.parse(response(200, '[1,2]'), SPOT).kind).toBe('failed');
  });
});

describe('OKX symbols', () => {
  it('lists instruments per instType', () => {
    const symbols = okxAdapter.symbols;
    if (!symbols) throw new Error('okx lists symbols');
    expect(symbols.request('swap', URLS).url).toBe(
      'https://www.okx.com/api/v5/public/instruments?instType=SWAP',
    );
    const body = {
      code: '0',
      msg: '',
      data: [
        { instType: 'SWAP', instId: 'BTC-USDT-SWAP', state: 'live' },
        { instType: 'SWAP', instId: 'ETH-USDT-SWAP', state: 'suspend' },
      ],
    };
    const out = symbols.parse(response(200, body));
    expect(out.kind === 'ok' && [...out.value]).toEqual(['BTC-USDT-SWAP', 'ETH-USDT-SWAP']);
  });
});

describe('OKX instrument keys', () => {
  it('reads spot and swap keys', () => {
    expect(SPOT).toEqual({
      spec: { instrumentKey: 'okx:spot:BTC-USDT', symbol: 'BTC-USDT', marketId: 7 },
      market: 'spot',
      symbol: 'BTC-USDT',
    });
    expect(instrument('okx:swap:BTC-USD_UM-SWAP').market).toBe('swap');
  });

  it.each([
    ['okx:spot:BTC-USDT-SWAP', 'okx:swap:BTC-USDT-SWAP'],
    ['okx:swap:BTC-USDT', 'end in -SWAP'],
    ['okx:spot:BTCUSDT', 'BASE-QUOTE'],
    ['okx:futures:BTC-USDT-250926', 'market type'],
    ['binance:spot:BTC-USDT', 'exchange'],
    ['okx:spot:btc-usdt', 'expected'],
  ])('refuses %s with a ConfigError naming the key', (key, why) => {
    let caught: unknown;
    try {
      okxAdapter.parseInstrument(key, 'market_data.instruments[3]', 0);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).key).toBe('market_data.instruments[3]');
    expect((caught as ConfigError).message).toContain(why);
  });

  it('makes valid stream names', () => {
    expect(streams.candles('1m', SWAP.spec.instrumentKey)).toBe('md.candles.1m.okx:swap:BTC-USDT-SWAP');
    expect(describeStream('md.candles.1m.okx:swap:BTC-USDT-SWAP')).toMatchObject({ kind: 'candles' });
    expect(describeStream(streams.prices(SPOT.spec.instrumentKey))).toMatchObject({ kind: 'prices' });
    expect(streams.feedStatus(okxAdapter.venue)).toBe('md.status.okx');
  });
});

describe('OKX sockets', () => {
  it('puts candles on business sockets and tickers on public ones, 100 instruments each', () => {
    const many = Array.from({ length: 250 }, (_, i) => instrument(`okx:spot:C${i}-USDT`));
    const plans = okxAdapter.sockets(many, URLS);
    expect(plans.map((p) => p.label)).toEqual([
      'business',
      'business#2',
      'business#3',
      'public',
      'public#2',
      'public#3',
    ]);
    for (const p of plans) {
      expect(p.instruments.length).toBeLessThanOrEqual(okxAdapter.limits.topicsPerConnection);
      expect(p.url).toBe(p.carriesCandles ? URLS.businessWsUrl : URLS.wsUrl);
      expect(p.carriesCandles).toBe(!p.carriesQuotes);
      expect(p.subscribe).toHaveLength(1);
      const msg = JSON.parse(p.subscribe[0] ?? '') as {
        op: string;
        args: { channel: string; instId: string }[];
      };
      expect(msg.op).toBe('subscribe');
      expect(msg.args.map((a) => a.instId)).toEqual(p.instruments.map((i) => i.symbol));
      expect(new Set(msg.args.map((a) => a.channel))).toEqual(
        new Set([p.carriesCandles ? 'candle1m' : 'tickers']),
      );
      expect(Buffer.byteLength(p.subscribe[0] ?? '')).toBeLessThan(64 * 1024);
    }
    expect(plans.filter((p) => p.carriesCandles).flatMap((p) => p.instruments)).toEqual(many);
  });
});
