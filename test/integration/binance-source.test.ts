import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/util/errors.js';
import { parseRetryAfter } from '../../src/marketdata/kit/rest-call.js';
import { parseBinanceMessage } from '../../src/marketdata/sources/binance/messages.js';
import { klinesUrl, parseKlineRow } from '../../src/marketdata/sources/binance/rest.js';
import {
  createBinanceSource,
  type BinanceSource,
  type BinanceSourceOptions,
} from '../../src/marketdata/sources/binance/source.js';
import type { FeedState, SourceEvent } from '../../src/marketdata/types.js';
import type { Candle, CandleOrigin, Tick } from '../../src/contracts/candle.js';
import { FakeBinance, fakeKlineValues, MINUTE as M, type FakeMarket } from '../helpers/fake-binance.js';

/** 2026-01-05 10:00:00 UTC: the market clock of every scenario starts around here. */
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
const BTC = 'binance:spot:BTCUSDT';
const ETH = 'binance:spot:ETHUSDT';
const BTC_F = 'binance:futures:BTCUSDT';

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(check: () => boolean, label: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await delay(5);
  }
}

/** The candle the source must yield for a fake kline. */
function expected(instrumentKey: string, tsOpen: number, origin: CandleOrigin, marketId = 0): Candle {
  const symbol = instrumentKey.split(':')[2] ?? '';
  const v = fakeKlineValues(symbol, tsOpen);
  return {
    instrumentKey,
    symbol,
    marketId,
    timeframe: '1m',
    tsOpen,
    tsClose: tsOpen + M,
    open: Number(v.o),
    high: Number(v.h),
    low: Number(v.l),
    close: Number(v.c),
    volumeBase: Number(v.v),
    volumeQuote: Number(v.q),
    origin,
  };
}

class Clock {
  constructor(public t: number) {}
  readonly now = (): number => this.t;
}

interface Run {
  readonly events: SourceEvent[];
  candles(key?: string): Candle[];
  ticks(): Tick[];
  states(): { state: FeedState; reason: string }[];
  invalid(): { reason: string; raw: string }[];
  throttles(): { throttled: boolean; backoffMs: number }[];
  stop(): Promise<void>;
  readonly done: Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function consume(source: BinanceSource): Run {
  const ac = new AbortController();
  const events: SourceEvent[] = [];
  const done = (async () => {
    for await (const ev of source.events(ac.signal)) events.push(ev);
  })();
  const run: Run = {
    events,
    candles: (key) =>
      events.flatMap((e) =>
        e.kind === 'candle' && (key === undefined || e.candle.instrumentKey === key) ? [e.candle] : [],
      ),
    ticks: () => events.flatMap((e) => (e.kind === 'tick' ? [e.tick] : [])),
    states: () => events.flatMap((e) => (e.kind === 'state' ? [{ state: e.state, reason: e.reason }] : [])),
    invalid: () => events.flatMap((e) => (e.kind === 'invalid' ? [{ reason: e.reason, raw: e.raw }] : [])),
    throttles: () =>
      events.flatMap((e) =>
        e.kind === 'throttle' ? [{ throttled: e.throttled, backoffMs: e.backoffMs }] : [],
      ),
    stop: async () => {
      ac.abort();
      await done;
    },
    done,
  };
  cleanups.push(() => run.stop());
  return run;
}

async function fake(clock: Clock, market: FakeMarket = 'spot', heartbeatMs = 0): Promise<FakeBinance> {
  const f = await FakeBinance.start({ market, now: clock.now, heartbeatMs });
  cleanups.push(() => f.close());
  return f;
}

/** Test-sized timings: fast reconnects and late checks; the market clock is `clock`. */
function source(f: FakeBinance, clock: Clock, extra: Partial<BinanceSourceOptions> = {}): BinanceSource {
  return createBinanceSource({
    instruments: [BTC],
    wsUrl: f.wsUrl,
    restUrl: f.restUrl,
    now: clock.now,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    gapCheckIntervalMs: 10,
    lateGraceMs: 5000,
    ...extra,
  });
}

/** Let anything still in flight arrive before comparing a whole sequence. */
const settle = (): Promise<void> => delay(150);

describe('binance messages (no sockets)', () => {
  const kline = (k: Record<string, unknown> = {}, top: Record<string, unknown> = {}): string =>
    JSON.stringify({
      stream: 'btcusdt@kline_1m',
      data: {
        e: 'kline',
        E: T0 + M,
        s: 'BTCUSDT',
        k: {
          t: T0,
          T: T0 + M - 1,
          s: 'BTCUSDT',
          i: '1m',
          f: 1,
          L: 2,
          o: '100.10000000',
          c: '100.20000000',
          h: '100.50000000',
          l: '99.90000000',
          v: '12.5',
          n: 3,
          x: true,
          q: '1251.5',
          V: '1',
          Q: '1',
          B: '0',
          ...k,
        },
        ...top,
      },
    });

  it('reads a closed and an open kline of a combined stream', () => {
    expect(parseBinanceMessage(kline())).toEqual({
      type: 'kline',
      stream: 'btcusdt@kline_1m',
      symbol: 'BTCUSDT',
      closed: true,
      kline: {
        openTime: T0,
        closeTime: T0 + M - 1,
        open: 100.1,
        high: 100.5,
        low: 99.9,
        close: 100.2,
        volume: 12.5,
        quoteVolume: 1251.5,
      },
    });
    expect(parseBinanceMessage(kline({ x: false }))).toMatchObject({ type: 'kline', closed: false });
  });

  it('reads spot and futures book tickers', () => {
    const spot = { u: 400900217, s: 'BNBUSDT', b: '25.35190000', B: '31.21', a: '25.36520000', A: '40.66' };
    expect(parseBinanceMessage(JSON.stringify({ stream: 'bnbusdt@bookTicker', data: spot }))).toEqual({
      type: 'bookTicker',
      stream: 'bnbusdt@bookTicker',
      symbol: 'BNBUSDT',
      bid: 25.3519,
      ask: 25.3652,
      exchangeTsMs: null,
    });
    const futures = { e: 'bookTicker', ...spot, E: T0 + 5, T: T0 + 3 };
    expect(
      parseBinanceMessage(JSON.stringify({ stream: 'bnbusdt@bookTicker', data: futures })),
    ).toMatchObject({
      type: 'bookTicker',
      exchangeTsMs: T0 + 3,
    });
  });

  it('reads serverShutdown (combined and raw) and control replies', () => {
    const notice = { e: 'serverShutdown', E: 1770123456789 };
    expect(parseBinanceMessage(JSON.stringify({ stream: '!serverShutdown', data: notice }))).toEqual({
      type: 'serverShutdown',
      eventTime: 1770123456789,
    });
    expect(parseBinanceMessage(JSON.stringify(notice))).toEqual({
      type: 'serverShutdown',
      eventTime: 1770123456789,
    });
    expect(parseBinanceMessage('{"result":null,"id":1}')).toEqual({ type: 'response', id: 1 });
    expect(parseBinanceMessage('{"code":2,"msg":"Invalid request","id":1}')).toMatchObject({
      type: 'invalid',
      reason: 'server error 2: Invalid request',
    });
  });

  it.each([
    ['non-JSON', 'not json', /not JSON/],
    ['a non-numeric price', kline({ c: 'abc' }), /k\.c: expected a decimal string/],
    ['a zero price', kline({ l: '0' }), /k\.l: expected a positive price/],
    ['a missing field', kline({ o: undefined }), /k\.o/],
    ['a timestamp off the minute', kline({ t: T0 + 7, T: T0 + 7 + M - 1 }), /not at a minute boundary/],
    ['a close time that does not match', kline({ T: T0 + M }), /close time/],
    ['a timestamp out of range', kline({ t: -60_000 }), /timestamp out of range/],
    ['a numeric string timestamp', kline({ t: String(T0) }), /k\.t/],
    ['another interval', kline({ i: '5m' }), /interval 5m/],
    ['high below low', kline({ h: '99.00000000' }), /high\/low/],
    ['a symbol that does not match the stream', kline({ s: 'ETHUSDT' }, { s: 'ETHUSDT' }), /does not carry/],
    ['an unknown stream', JSON.stringify({ stream: 'btcusdt@trade', data: {} }), /unexpected stream/],
    ['a JSON array', '[1,2]', /not a combined-stream message/],
  ])('%s is invalid, with a reason', (_what, text, reason) => {
    const r = parseBinanceMessage(text);
    expect(r.type).toBe('invalid');
    expect(r.type === 'invalid' ? r.reason : '').toMatch(reason);
  });

  it('reads REST kline rows and rejects bad ones', () => {
    const row = [T0, '1.5', '2.0', '1.0', '1.8', '10', T0 + M - 1, '15', 7, '5', '7.5', '0'];
    expect(parseKlineRow(row)).toEqual({
      ok: true,
      kline: {
        openTime: T0,
        closeTime: T0 + M - 1,
        open: 1.5,
        high: 2,
        low: 1,
        close: 1.8,
        volume: 10,
        quoteVolume: 15,
      },
    });
    expect(parseKlineRow([T0, 'x', '2.0', '1.0', '1.8', '10', T0 + M - 1, '15'])).toMatchObject({
      ok: false,
    });
    expect(parseKlineRow([T0, '1.5', '2.0', '1.0', '1.8', '10', T0 + M, '15'])).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/close time/) as unknown,
    });
    expect(parseKlineRow({ t: T0 })).toMatchObject({ ok: false });
  });

  it('builds kline URLs for spot and futures and reads Retry-After', () => {
    const q = { symbol: 'BTCUSDT', startTime: T0, endTime: T0 + 5 * M - 1, limit: 5 };
    expect(klinesUrl('http://h:1', { market: 'spot', ...q })).toBe(
      `http://h:1/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=${T0}&endTime=${T0 + 5 * M - 1}&limit=5`,
    );
    expect(klinesUrl('https://f', { market: 'futures', ...q })).toMatch(
      /^https:\/\/f\/fapi\/v1\/klines\?symbol=BTCUSDT&/,
    );
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(new Date(T0 + 30_000).toUTCString(), T0)).toBe(30_000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });

  it('rejects wrong options with a ConfigError naming the key', () => {
    const bad = (o: Partial<BinanceSourceOptions>): unknown => {
      try {
        createBinanceSource({ instruments: [BTC], ...o });
      } catch (err) {
        return err instanceof ConfigError ? err.key : err;
      }
      return 'no error';
    };
    expect(bad({ instruments: ['binance:spot:btcusdt'] })).toBe('market_data.sources.binance.instruments[0]');
    expect(bad({ instruments: ['kraken:spot:BTCUSDT'] })).toBe('market_data.sources.binance.instruments[0]');
    expect(bad({ instruments: ['binance:margin:BTCUSDT'] })).toBe(
      'market_data.sources.binance.instruments[0]',
    );
    expect(bad({ instruments: [BTC, BTC] })).toBe('market_data.sources.binance.instruments');
    expect(bad({ wsUrl: 'http://x' })).toBe('market_data.sources.binance.ws_url');
    expect(bad({ restUrl: 'nope' })).toBe('market_data.sources.binance.rest_url');
    expect(bad({ maxHistoryCallsPerMin: 0 })).toBe('market_data.sources.binance.max_history_calls_per_min');
    expect(bad({ reconnectMaxMs: 10, reconnectBaseMs: 100 })).toBe(
      'market_data.sources.binance.reconnect_max_ms',
    );
  });
});

describe('binance source against a local fake Binance', () => {
  it('a closing message that comes twice, late, or never: each minute once, in order, REST fills the missing one', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock);
    const src = source(f, clock);
    const run = consume(src);
    await f.waitForConnections(1);

    clock.t = T0 + M + 100;
    expect(f.pushKline('BTCUSDT', T0)).toBe(1);
    await waitFor(() => run.candles().length === 1, '10:00');

    clock.t = T0 + 2 * M + 100;
    f.pushKline('BTCUSDT', T0 + M);
    f.pushKline('BTCUSDT', T0 + M); // the closing message again
    await waitFor(() => src.stats().duplicates === 1, 'the repeat dropped');

    // 10:02 closed at 10:03:00 and its closing message is more than the 5 s grace late: REST has it.
    clock.t = T0 + 3 * M + 6000;
    await waitFor(() => run.candles().length === 3, '10:02 from REST');
    f.pushKline('BTCUSDT', T0 + 2 * M); // ... and now it comes after all
    await waitFor(() => src.stats().duplicates === 2, 'the late closing message dropped');

    // 10:03's closing message is 3 s late: within the grace period, so the socket's one counts.
    clock.t = T0 + 4 * M + 3000;
    f.pushKline('BTCUSDT', T0 + 3 * M);
    await waitFor(() => run.candles().length === 4, '10:03');
    await settle();

    expect(run.candles()).toEqual([
      expected(BTC, T0, 'ws'),
      expected(BTC, T0 + M, 'ws'),
      expected(BTC, T0 + 2 * M, 'rest'),
      expected(BTC, T0 + 3 * M, 'ws'),
    ]);
    expect(f.klineRequests.map((r) => [r.params.get('symbol'), Number(r.params.get('startTime'))])).toEqual([
      ['BTCUSDT', T0 + 2 * M],
    ]);
    expect(run.invalid()).toEqual([]);
  });

  it('minutes skipped on the socket are fetched before the live candle that follows them', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock);
    f.missing.add(`BTCUSDT:${T0 + 3 * M}`); // the exchange itself has no 10:03
    const run = consume(source(f, clock, { lateGraceMs: 10 * M }));
    await f.waitForConnections(1);

    clock.t = T0 + M + 100;
    f.pushKline('BTCUSDT', T0);
    await waitFor(() => run.candles().length === 1, '10:00');
    clock.t = T0 + 5 * M + 100;
    f.pushKline('BTCUSDT', T0 + 4 * M);
    await waitFor(() => run.candles().length === 4, '10:01, 10:02, 10:04');
    await settle();

    expect(run.candles()).toEqual([
      expected(BTC, T0, 'ws'),
      expected(BTC, T0 + M, 'rest'),
      expected(BTC, T0 + 2 * M, 'rest'),
      expected(BTC, T0 + 4 * M, 'ws'),
    ]);
    const [req] = f.klineRequests;
    expect(f.klineRequests).toHaveLength(1);
    expect(req?.path).toBe('/api/v3/klines');
    expect(Object.fromEntries(req?.params ?? [])).toEqual({
      symbol: 'BTCUSDT',
      interval: '1m',
      startTime: String(T0 + M),
      endTime: String(T0 + 4 * M - 1),
      limit: '3',
    });
  });

  it('late fills that find nothing (a halted symbol) back off instead of spending the history budget', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock);
    const run = consume(source(f, clock));
    await f.waitForConnections(1);
    clock.t = T0 + M + 100;
    f.pushKline('BTCUSDT', T0);
    await waitFor(() => run.candles().length === 1, '10:00');
    for (let m = 1; m <= 30; m += 1) f.missing.add(`BTCUSDT:${T0 + m * M}`);
    const calls = (): number => f.klineRequests.length;

    clock.t = T0 + 2 * M + 5000; // 10:01 is 5 s late
    await waitFor(() => calls() === 1, 'late fill 1');
    clock.t += 5000;
    await delay(60);
    expect(calls()).toBe(1); // it found nothing: the next waits 10 s
    clock.t += 5000;
    await waitFor(() => calls() === 2, 'late fill 2');
    clock.t += 10_000;
    await delay(60);
    expect(calls()).toBe(2); // ... then 20 s
    clock.t += 10_000;
    await waitFor(() => calls() === 3, 'late fill 3');
    expect(run.candles()).toHaveLength(1);
  });

  it('with `since`, the closed minutes from there are fetched at start (not the open one), then live', async () => {
    const clock = new Clock(T0 + 3 * M + 20_000);
    const f = await fake(clock);
    const run = consume(source(f, clock, { since: T0 }));
    await waitFor(() => run.candles().length === 3, '10:00..10:02 from REST');
    clock.t = T0 + 4 * M + 100;
    f.pushKline('BTCUSDT', T0 + 3 * M);
    await waitFor(() => run.candles().length === 4, '10:03');
    await settle();
    expect(run.candles()).toEqual([
      expected(BTC, T0, 'rest'),
      expected(BTC, T0 + M, 'rest'),
      expected(BTC, T0 + 2 * M, 'rest'),
      expected(BTC, T0 + 3 * M, 'ws'),
    ]);
  });

  it('a disconnect in mid-minute: DISCONNECTED, resubscribed on reconnect, RECOVERING, STREAM; REST fills the minute closed meanwhile', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock);
    const src = source(f, clock, { instruments: [BTC, ETH] });
    const run = consume(src);
    const first = await f.waitForConnections(1);
    expect(first.path).toBe('/stream');
    expect(first.streams).toEqual([
      'btcusdt@kline_1m',
      'btcusdt@bookTicker',
      'ethusdt@kline_1m',
      'ethusdt@bookTicker',
    ]);

    clock.t = T0 + M + 100;
    f.pushKline('BTCUSDT', T0);
    f.pushKline('ETHUSDT', T0);
    await waitFor(() => run.candles().length === 2, '10:00 of both');

    clock.t = T0 + M + 30_000; // mid-minute
    f.refuseConnections = true;
    f.dropAll();
    await waitFor(() => run.states().some((s) => s.state === 'DISCONNECTED'), 'DISCONNECTED');
    await delay(100); // a few refused attempts
    clock.t = T0 + 2 * M + 20_000; // 10:01 closed while we were away; its closing message is gone
    f.refuseConnections = false;
    const second = await f.waitForConnections(2);
    expect(second.streams).toEqual(first.streams);
    expect(first.closedBy).toBe('server');
    // The client has seen the reconnect (and checked for missing minutes) before the clock moves on.
    await waitFor(() => src.stats().connects === 2, 'the client reconnected');
    await waitFor(() => run.candles().length === 4, '10:01 of both from REST');

    clock.t = T0 + 3 * M + 100;
    f.pushKline('BTCUSDT', T0 + 2 * M);
    f.pushKline('ETHUSDT', T0 + 2 * M);
    await waitFor(() => run.candles().length === 6, '10:02 of both');
    await settle();

    for (const key of [BTC, ETH]) {
      expect(run.candles(key)).toEqual([
        expected(key, T0, 'ws'),
        expected(key, T0 + M, 'rest'),
        expected(key, T0 + 2 * M, 'ws'),
      ]);
    }
    expect(run.states().map((s) => s.state)).toEqual([
      'RECOVERING',
      'STREAM',
      'DISCONNECTED',
      'RECOVERING',
      'STREAM',
    ]);
    expect(run.states()[2]?.reason).toMatch(/^spot: .*reconnecting in \d+ ms$/);
    expect(run.states()[3]?.reason).toBe('spot: reconnected, waiting for data');
  });

  it('serverShutdown: the client closes and reconnects at once (no backoff) with the same streams; nothing lost', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock);
    // A 10 s backoff would time this test out: only a planned reconnect is quick enough.
    const src = source(f, clock, { reconnectBaseMs: 10_000, reconnectMaxMs: 10_000 });
    const run = consume(src);
    const first = await f.waitForConnections(1);
    clock.t = T0 + M + 100;
    f.pushKline('BTCUSDT', T0);
    await waitFor(() => run.candles().length === 1, '10:00');

    clock.t = T0 + M + 50_000;
    expect(f.serverShutdown()).toBe(1);
    const second = await f.waitForConnections(2, 2000);
    expect(first.closedBy).toBe('client');
    expect(first.closeCode).toBe(1000);
    expect(second.streams).toEqual(first.streams);
    await waitFor(() => src.stats().connects === 2, 'the client reconnected');

    clock.t = T0 + 2 * M + 100;
    expect(f.pushKline('BTCUSDT', T0 + M)).toBe(1);
    await waitFor(() => run.candles().length === 2, '10:01');
    await settle();
    expect(run.candles()).toEqual([expected(BTC, T0, 'ws'), expected(BTC, T0 + M, 'ws')]);
    expect(run.states().map((s) => s.state)).toEqual(['RECOVERING', 'STREAM', 'RECOVERING', 'STREAM']);
    expect(run.states()[2]?.reason).toBe('spot: serverShutdown');
  });

  it('rotation before the 24 h cut: a planned reconnect, and REST fills the minute that closed in the seam', async () => {
    const clock = new Clock(T0 + M + 100);
    const f = await fake(clock, 'spot', 50);
    // Only the reconnect can fetch 10:01 here: late checks would wait 10 minutes, backoff 10 s.
    const run = consume(
      source(f, clock, {
        since: T0,
        rotateAfterMs: 400,
        lateGraceMs: 10 * M,
        reconnectBaseMs: 10_000,
        reconnectMaxMs: 10_000,
      }),
    );
    const first = await f.waitForConnections(1);
    await waitFor(() => run.candles().length === 1, '10:00 from REST (since)');
    clock.t = T0 + 2 * M + 500; // 10:01 closes while the socket is being replaced

    const second = await f.waitForConnections(2, 3000);
    expect(first.closedBy).toBe('client');
    expect(first.closeCode).toBe(1000);
    expect(second.streams).toEqual(first.streams);
    await waitFor(() => run.candles().length === 2, '10:01 from REST after the rotation');
    await settle();
    expect(run.candles()).toEqual([expected(BTC, T0, 'rest'), expected(BTC, T0 + M, 'rest')]);
    await waitFor(() => run.states().length >= 4, 'STREAM after the rotation');
    expect(run.states().slice(0, 4)).toEqual([
      { state: 'RECOVERING', reason: 'spot: connected, waiting for data' },
      { state: 'STREAM', reason: 'spot: data flowing' },
      { state: 'RECOVERING', reason: 'spot: rotating after 400 ms' },
      { state: 'STREAM', reason: 'spot: data flowing' },
    ]);
  });

  it('a 429 with Retry-After: the limiter waits that long, reports throttling, then fills', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock);
    const run = consume(source(f, clock, { lateGraceMs: 10 * M }));
    await f.waitForConnections(1);
    clock.t = T0 + M + 100;
    f.pushKline('BTCUSDT', T0);
    await waitFor(() => run.candles().length === 1, '10:00');

    f.queueRestReply({
      status: 429,
      headers: { 'Retry-After': '1' },
      body: '{"code":-1003,"msg":"Too many requests; current limit is 6000 request weight per 1 MINUTE."}',
    });
    clock.t = T0 + 3 * M + 100;
    f.pushKline('BTCUSDT', T0 + 2 * M);
    await waitFor(() => run.candles().length === 3, '10:01 after the wait, then 10:02', 5000);
    await settle();

    expect(run.candles()).toEqual([
      expected(BTC, T0, 'ws'),
      expected(BTC, T0 + M, 'rest'),
      expected(BTC, T0 + 2 * M, 'ws'),
    ]);
    const [r429, r200] = f.klineRequests;
    expect(f.klineRequests).toHaveLength(2);
    expect((r200?.at ?? 0) - (r429?.at ?? 0)).toBeGreaterThanOrEqual(1000);
    expect(run.throttles()).toEqual([
      { throttled: true, backoffMs: 1000 },
      { throttled: false, backoffMs: 0 },
    ]);
  });

  it('a silent socket (no data, no pongs) is detected and replaced; a talking one is left alone', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock, 'spot', 50); // open-kline updates every 50 ms, like Binance's every 2 s
    const run = consume(source(f, clock, { silenceTimeoutMs: 400 }));
    const first = await f.waitForConnections(1);
    await waitFor(() => run.states().some((s) => s.state === 'STREAM'), 'STREAM');
    await delay(900);
    expect(f.connections).toHaveLength(1); // data and pongs keep it alive
    expect(first.pings).toBeGreaterThan(0);

    const silentAt = Date.now();
    f.goSilent();
    await f.waitForConnections(2, 3000);
    expect(Date.now() - silentAt).toBeLessThan(1500);
    expect(first.closedBy).toBe('client');
    await waitFor(() => run.states().filter((s) => s.state === 'STREAM').length === 2, 'STREAM again');
    const states = run.states();
    expect(states.map((s) => s.state)).toEqual([
      'RECOVERING',
      'STREAM',
      'DISCONNECTED',
      'RECOVERING',
      'STREAM',
    ]);
    expect(states[2]?.reason).toMatch(/^spot: silent: /);
  });

  it('bad input is reported as invalid, counted and skipped; the source goes on', async () => {
    const clock = new Clock(T0 + M + 100);
    const f = await fake(clock);
    const src = source(f, clock);
    const run = consume(src);
    await f.waitForConnections(1);

    const payload = (): Record<string, unknown> => f.klinePayload('BTCUSDT', T0, true);
    const withK = (patch: Record<string, unknown>): Record<string, unknown> => {
      const p = payload();
      return { ...p, k: { ...(p['k'] as Record<string, unknown>), ...patch } };
    };
    f.sendRaw('this is not JSON');
    f.sendToStream('btcusdt@kline_1m', withK({ c: 'abc' }));
    f.sendToStream('btcusdt@kline_1m', withK({ o: undefined }));
    f.sendToStream('btcusdt@kline_1m', withK({ t: T0 + 1234 }));
    f.sendRaw(JSON.stringify({ stream: 'ethusdt@kline_1m', data: f.klinePayload('ETHUSDT', T0, true) }));
    f.sendToStream('btcusdt@bookTicker', { u: 1, s: 'BTCUSDT', b: 'NaN', B: '1', a: '1.0', A: '1' });
    f.pushKline('BTCUSDT', T0);
    f.pushBookTicker('BTCUSDT', '100.10', '100.20');
    await waitFor(() => run.candles().length === 1 && run.ticks().length === 1, 'the good candle and tick');
    await settle();

    const reasons = run.invalid().map((i) => i.reason);
    expect(reasons).toHaveLength(6);
    expect(reasons[0]).toBe('spot: not JSON');
    expect(run.invalid()[0]?.raw).toBe('this is not JSON');
    expect(reasons[1]).toMatch(/k\.c: expected a decimal string/);
    expect(reasons[2]).toMatch(/k\.o/);
    expect(reasons[3]).toMatch(/minute boundary|close time/);
    expect(reasons[4]).toBe('spot: unknown symbol ETHUSDT');
    expect(reasons[5]).toMatch(/^spot: bookTicker: b:/);
    expect(src.stats().invalid).toBe(6);
    expect(run.candles()).toEqual([expected(BTC, T0, 'ws')]);
    expect(run.ticks()).toEqual([
      { instrumentKey: BTC, symbol: 'BTCUSDT', bid: 100.1, ask: 100.2, tsMs: clock.t },
    ]);
  });

  it('binance:futures:* uses the futures socket URL and /fapi/v1/klines; spot stays on its own', async () => {
    const clock = new Clock(T0 + 30_000);
    const spot = await fake(clock, 'spot');
    const fut = await fake(clock, 'futures');
    const run = consume(
      createBinanceSource({
        instruments: [BTC, BTC_F],
        marketIds: { [BTC_F]: 7 },
        wsUrl: spot.wsUrl,
        restUrl: spot.restUrl,
        futuresWsUrl: fut.wsUrl,
        futuresRestUrl: fut.restUrl,
        now: clock.now,
        lateGraceMs: 10 * M,
        gapCheckIntervalMs: 10,
      }),
    );
    const s = await spot.waitForConnections(1);
    const fc = await fut.waitForConnections(1);
    expect(s.streams).toEqual(['btcusdt@kline_1m', 'btcusdt@bookTicker']);
    expect(fc.streams).toEqual(['btcusdt@kline_1m', 'btcusdt@bookTicker']);

    clock.t = T0 + M + 100;
    spot.pushKline('BTCUSDT', T0);
    fut.pushKline('BTCUSDT', T0);
    await waitFor(() => run.candles().length === 2, '10:00 of both');
    clock.t = T0 + 3 * M + 100;
    fut.pushKline('BTCUSDT', T0 + 2 * M);
    await waitFor(() => run.candles(BTC_F).length === 3, 'futures 10:01 (REST) and 10:02');
    fut.pushBookTicker('BTCUSDT', '100.5', '100.6');
    await waitFor(() => run.ticks().length === 1, 'futures tick');
    await settle();

    expect(run.candles(BTC_F)).toEqual([
      expected(BTC_F, T0, 'ws', 7),
      expected(BTC_F, T0 + M, 'rest', 7),
      expected(BTC_F, T0 + 2 * M, 'ws', 7),
    ]);
    expect(run.candles(BTC)).toEqual([expected(BTC, T0, 'ws')]);
    expect(fut.klineRequests.map((r) => r.path)).toEqual(['/fapi/v1/klines']);
    expect(spot.klineRequests).toEqual([]);
    // Futures book tickers carry the transaction time T (the fake sends now - 1).
    expect(run.ticks()).toEqual([
      { instrumentKey: BTC_F, symbol: 'BTCUSDT', bid: 100.5, ask: 100.6, tsMs: clock.t - 1 },
    ]);
  });

  it('a slow consumer pauses the socket: the buffer stays bounded and no tick is lost', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock);
    const src = source(f, clock, { queueCapacity: 1000 });
    const ac = new AbortController();
    const it = src.events(ac.signal)[Symbol.asyncIterator]();
    cleanups.push(async () => {
      ac.abort();
      await it.return?.();
    });
    expect((await it.next()).value).toMatchObject({ kind: 'state', state: 'RECOVERING' });
    await f.waitForConnections(1);

    const n = 5000;
    for (let i = 0; i < n; i += 1) f.pushBookTicker('BTCUSDT', (1000 + i).toFixed(2), (1001 + i).toFixed(2));
    await waitFor(() => src.stats().pauses >= 1, 'the pause');
    await delay(200); // the consumer is away
    expect(src.stats().queued).toBeLessThan(2000);

    const bids: number[] = [];
    while (bids.length < n) {
      const r = await it.next();
      if (r.done) break;
      if (r.value.kind === 'tick') bids.push(r.value.tick.bid);
    }
    const stats = src.stats();
    expect(stats.dropped).toBe(0);
    expect(stats.maxQueued).toBeLessThan(2000);
    expect(bids).toEqual(Array.from({ length: n }, (_, i) => 1000 + i));
  });

  it('stops cleanly on abort: socket closed, nothing scheduled, the generator returns (also during a backoff)', async () => {
    const clock = new Clock(T0 + 30_000);
    const f = await fake(clock);
    const run = consume(source(f, clock, { reconnectBaseMs: 10_000, reconnectMaxMs: 10_000 }));
    const first = await f.waitForConnections(1);
    await waitFor(() => run.states().length === 1, 'RECOVERING');
    let t = Date.now();
    await run.stop();
    expect(Date.now() - t).toBeLessThan(1000);
    await waitFor(() => first.closed, 'closed at the server');
    expect(first.closedBy).toBe('client');
    expect(first.closeCode).toBe(1000);

    // Stopped while waiting 10 s to reconnect.
    const run2 = consume(source(f, clock, { reconnectBaseMs: 10_000, reconnectMaxMs: 10_000 }));
    await f.waitForConnections(2);
    f.refuseConnections = true;
    f.dropAll();
    await waitFor(() => run2.states().some((s) => s.state === 'DISCONNECTED'), 'DISCONNECTED');
    t = Date.now();
    await run2.stop();
    expect(Date.now() - t).toBeLessThan(500);

    // Breaking out of the loop stops it too.
    f.refuseConnections = false;
    const src = source(f, clock);
    const ac = new AbortController();
    for await (const ev of src.events(ac.signal)) {
      if (ev.kind === 'state') break;
    }
    await waitFor(() => f.connections.length === 3 && f.connections.every((c) => c.closed), 'all closed');
    await delay(100);
    expect(f.connections).toHaveLength(3);
    expect(f.klineRequests).toEqual([]);
  });
});
