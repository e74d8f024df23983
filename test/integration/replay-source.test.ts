import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/util/errors.js';
import { progressBar } from '../../src/marketdata/sources/replay/progress.js';
import { createReplaySource } from '../../src/marketdata/sources/replay/source.js';
import type { ReplaySourceOptions } from '../../src/marketdata/sources/replay/options.js';
import { parseTimestamp } from '../../src/marketdata/sources/replay/values.js';
import type { SourceEvent } from '../../src/marketdata/types.js';
import type { Candle, Tick } from '../../src/contracts/candle.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/binance-klines-BTCUSDT-1m-sample.csv');
const BTC = 'binance:spot:BTCUSDT';
const MIN = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'marketbus-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function file(content: string | Buffer, ext = 'csv'): string {
  fileNo += 1;
  const p = join(dir, `f${fileNo}.${ext}`);
  writeFileSync(p, content);
  return p;
}

interface Stamped {
  readonly ev: SourceEvent;
  readonly at: number;
}

async function run(
  opts: ReplaySourceOptions,
  stop?: (ev: SourceEvent) => boolean,
  maxMs = 20_000,
): Promise<Stamped[]> {
  const src = createReplaySource(opts);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), maxMs);
  const out: Stamped[] = [];
  const t0 = performance.now();
  try {
    for await (const ev of src.events(ac.signal)) {
      out.push({ ev, at: performance.now() - t0 });
      if (stop?.(ev)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

const candles = (s: readonly Stamped[]): Candle[] =>
  s.flatMap(({ ev }) => (ev.kind === 'candle' ? [ev.candle] : []));
const ticks = (s: readonly Stamped[]): Tick[] => s.flatMap(({ ev }) => (ev.kind === 'tick' ? [ev.tick] : []));
const invalids = (s: readonly Stamped[]): { reason: string; raw: string }[] =>
  s.flatMap(({ ev }) => (ev.kind === 'invalid' ? [{ reason: ev.reason, raw: ev.raw }] : []));

function fixtureRows(): string[][] {
  return readFileSync(FIXTURE, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(','));
}

function expectConsistent(c: Candle): void {
  expect(c.origin).toBe('replay');
  expect(c.tsClose - c.tsOpen).toBe(c.timeframe === '1m' ? MIN : 5 * MIN);
  expect(c.high).toBeGreaterThanOrEqual(Math.max(c.open, c.close));
  expect(c.low).toBeLessThanOrEqual(Math.min(c.open, c.close));
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('replay source: formats', () => {
  it('replays the Binance kline CSV (no header, ms) in order, fast at speed 0', async () => {
    const rows = fixtureRows();
    const out = await run({ file: FIXTURE, instrumentKey: BTC, speed: 0 });
    const got = candles(out);
    expect(got).toHaveLength(30);
    expect(got[0]).toEqual({
      instrumentKey: BTC,
      symbol: 'BTCUSDT',
      marketId: 0,
      timeframe: '1m',
      tsOpen: Number(rows[0]?.[0]),
      tsClose: Number(rows[0]?.[0]) + MIN,
      open: Number(rows[0]?.[1]),
      high: Number(rows[0]?.[2]),
      low: Number(rows[0]?.[3]),
      close: Number(rows[0]?.[4]),
      volumeBase: Number(rows[0]?.[5]),
      volumeQuote: Number(rows[0]?.[7]),
      origin: 'replay',
    });
    got.forEach((c, i) => {
      expect(c.tsOpen).toBe(Date.UTC(2024, 0, 1) + i * MIN);
      expect(c.close).toBe(Number(rows[i]?.[4]));
      expectConsistent(c);
    });
    expect(invalids(out)).toEqual([]);
    expect(out[0]?.ev).toMatchObject({ kind: 'state', state: 'STREAM' });
    expect(out.at(-1)?.ev).toMatchObject({ kind: 'state', state: 'IDLE' });
    expect((out.at(-1)?.ev as { reason: string }).reason).toContain('30 candles');
    expect(out.at(-1)?.at ?? Infinity).toBeLessThan(500);
  });

  it('reads microsecond timestamps (Binance dumps since 2025, with header) as the same candles', async () => {
    const header =
      'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore';
    const us = fixtureRows().map((r) =>
      r.map((cell, i) => (i === 0 ? `${cell}000` : i === 6 ? `${cell}999` : cell)).join(','),
    );
    expect(us[0]?.startsWith('1704067200000000,')).toBe(true);
    const usFile = file(`${header}\n${us.join('\n')}\n`);
    const fromUs = candles(await run({ file: usFile, instrumentKey: BTC, speed: 0 }));
    const fromMs = candles(await run({ file: FIXTURE, instrumentKey: BTC, speed: 0 }));
    expect(fromUs).toHaveLength(30);
    expect(fromUs).toEqual(fromMs);
  });

  it('replays a generic candle CSV with a header: ISO times, quoted cells, instrument per row, 5m', async () => {
    const f = file(
      [
        'instrument_key,ts_open,ts_close,open,high,low,close,volume_base,volume_quote,market_id',
        'sim:spot:BTCUSDT,2026-02-10T12:00:00Z,2026-02-10T12:01:00Z,100,101,99,100.5,2,201,7',
        'sim:fx:EURUSD,2026-02-10T12:00:00.000Z,2026-02-10T12:05:00.000Z,1.08,1.081,1.079,1.0805,1000,',
        '"sim:spot:BTCUSDT","2026-02-10 12:01:00","2026-02-10 12:02:00","100.5","102","100","101.5","3","304.5","7"',
        'sim:fx:EURUSD,2026-02-10T12:05:00+00:00,2026-02-10T12:10:00+00:00,1.0805,1.0806,1.08,1.0801,1200,1296.12',
      ].join('\r\n'),
    );
    const src = createReplaySource({ file: f, speed: 0 });
    expect(src.instruments.map((i) => i.instrumentKey)).toEqual(['sim:spot:BTCUSDT', 'sim:fx:EURUSD']);
    const got = candles(await run({ file: f, speed: 0 }));
    expect(got.map((c) => [c.instrumentKey, c.timeframe, new Date(c.tsOpen).toISOString()])).toEqual([
      ['sim:spot:BTCUSDT', '1m', '2026-02-10T12:00:00.000Z'],
      ['sim:fx:EURUSD', '5m', '2026-02-10T12:00:00.000Z'],
      ['sim:spot:BTCUSDT', '1m', '2026-02-10T12:01:00.000Z'],
      ['sim:fx:EURUSD', '5m', '2026-02-10T12:05:00.000Z'],
    ]);
    expect(got[0]).toMatchObject({ marketId: 7, volumeBase: 2, volumeQuote: 201, symbol: 'BTCUSDT' });
    expect(got[1]).toMatchObject({ marketId: 0, volumeQuote: null, open: 1.08 });
    expect(got[2]).toMatchObject({ open: 100.5, high: 102, close: 101.5 });
    got.forEach(expectConsistent);
  });

  it('a header CSV without ts_close takes the timeframe option; a tick CSV gives ticks', async () => {
    const c = file(
      'open_time,open,high,low,close,volume\n1770724800000,1,2,0.5,1.5,10\n1770725100000,1.5,2,1,1,5\n',
    );
    const got = candles(await run({ file: c, instrumentKey: 'sim:spot:ABC', timeframe: '5m', speed: 0 }));
    expect(got.map((x) => [x.timeframe, x.tsClose - x.tsOpen, x.volumeQuote])).toEqual([
      ['5m', 300_000, null],
      ['5m', 300_000, null],
    ]);
    const t = file('ts,bid,ask\n1770724800.5,1.0801,1.0802\n1770724801.25,1.0802,1.0803\n');
    expect(ticks(await run({ file: t, instrumentKey: 'sim:fx:EURUSD', speed: 0 }))).toEqual([
      { instrumentKey: 'sim:fx:EURUSD', symbol: 'EURUSD', bid: 1.0801, ask: 1.0802, tsMs: 1770724800500 },
      { instrumentKey: 'sim:fx:EURUSD', symbol: 'EURUSD', bid: 1.0802, ask: 1.0803, tsMs: 1770724801250 },
    ]);
  });

  it('replays JSON lines of candles (numbers or numeric strings, ISO or epoch ms) and ticks', async () => {
    const f = file(
      [
        JSON.stringify({
          schema_version: '1',
          market_id: '42',
          symbol: 'XAUUSD',
          instrument_key: 'fxcm:fx:XAUUSD',
          ts_open: '2026-02-10T12:34:00.000Z',
          ts_close: '2026-02-10T12:35:00.000Z',
          open: '2300.1',
          high: '2301',
          low: '2299.5',
          close: '2300.7',
          volume_base: '12.5',
          volume_quote: '',
          source: 'ws',
        }),
        JSON.stringify({
          instrument_key: 'fxcm:fx:XAUUSD',
          ts_open: Date.UTC(2026, 1, 10, 12, 35),
          ts_close: Date.UTC(2026, 1, 10, 12, 36),
          open: 2300.7,
          high: 2302,
          low: 2300,
          close: 2301.9,
          volume_base: 8,
          volume_quote: 18415.2,
        }),
        '',
        JSON.stringify({
          instrument_key: 'binance:spot:ETHUSDT',
          bid: 3000.1,
          ask: '3000.2',
          ts: 1770726900123,
        }),
        // the original price snapshot payload: symbol only, epoch seconds → the instrumentKey option.
        JSON.stringify({
          symbol: 'XAUUSD',
          bid: 4209.62,
          ask: 4210.02,
          mid: 4209.82,
          tick_ts: 1764866660.0,
          snap_ts: 1764866661.0,
        }),
      ].join('\n'),
      'jsonl',
    );
    const out = await run({ file: f, instrumentKey: 'fxcm:fx:XAUUSD', speed: 0 });
    expect(invalids(out)).toEqual([]);
    expect(candles(out)).toEqual([
      {
        instrumentKey: 'fxcm:fx:XAUUSD',
        symbol: 'XAUUSD',
        marketId: 42,
        timeframe: '1m',
        tsOpen: Date.UTC(2026, 1, 10, 12, 34),
        tsClose: Date.UTC(2026, 1, 10, 12, 35),
        open: 2300.1,
        high: 2301,
        low: 2299.5,
        close: 2300.7,
        volumeBase: 12.5,
        volumeQuote: null,
        origin: 'replay',
      },
      expect.objectContaining({
        tsOpen: Date.UTC(2026, 1, 10, 12, 35),
        close: 2301.9,
        volumeQuote: 18415.2,
        marketId: 0,
      }),
    ]);
    expect(ticks(out)).toEqual([
      {
        instrumentKey: 'binance:spot:ETHUSDT',
        symbol: 'ETHUSDT',
        bid: 3000.1,
        ask: 3000.2,
        tsMs: 1770726900123,
      },
      { instrumentKey: 'fxcm:fx:XAUUSD', symbol: 'XAUUSD', bid: 4209.62, ask: 4210.02, tsMs: 1764866660000 },
    ]);
  });

  it('tells the timestamp unit by magnitude: s, ms, µs, ns; ISO with or without a zone', () => {
    const t = Date.UTC(2025, 5, 1, 0, 1);
    expect(parseTimestamp(t / 1000)).toBe(t);
    expect(parseTimestamp(`${t / 1000}.5`)).toBe(t + 500);
    expect(parseTimestamp(t)).toBe(t);
    expect(parseTimestamp(String(t))).toBe(t);
    expect(parseTimestamp(t * 1000 + 999)).toBe(t);
    expect(parseTimestamp(`${t}000`)).toBe(t);
    expect(parseTimestamp(`${t}000000`)).toBe(t);
    expect(parseTimestamp('2025-06-01T00:01:00Z')).toBe(t);
    expect(parseTimestamp('2025-06-01T00:01:00.000000Z')).toBe(t);
    expect(parseTimestamp('2025-06-01 00:01:00')).toBe(t);
    expect(parseTimestamp('2025-06-01T02:01:00+02:00')).toBe(t);
    for (const bad of [
      '',
      'yesterday',
      '12',
      123,
      -t,
      0,
      Number.NaN,
      '2025-13-45T00:00:00Z',
      'Sun, 01 Jun 2025',
      '1e30',
      null,
    ]) {
      expect(parseTimestamp(bad)).toBeNull();
    }
  });
});

describe('replay source: bad rows', () => {
  it('reports bad and out-of-order CSV rows as invalid with their line numbers and goes on', async () => {
    const hostile = 'binance:spot:BTC\u001b[2J';
    const lines = [
      'instrument_key,ts_open,open,high,low,close,volume',
      'sim:spot:BTCUSDT,1770724800000,100,101,99,100.5,2', // 2 good
      'sim:spot:BTCUSDT,1770724860000,abc,101,99,100.5,2', // 3 non-numeric
      'sim:spot:BTCUSDT,1770724860000,100,101,99,100.5', // 4 missing volume
      'sim:spot:BTCUSDT,yesterday,100,101,99,100.5,2', // 5 bad timestamp
      'sim:spot:BTCUSDT,1770724860000,100,98,99,100.5,2', // 6 high < low
      `${hostile},1770724860000,100,101,99,100.5,2`, // 7 hostile key
      '../../etc/passwd,1770724860000,100,101,99,100.5,2', // 8 hostile key
      'sim:spot:BTCUSDT,1770724830000,100,101,99,100.5,2', // 9 not aligned
      'sim:spot:BTCUSDT,1770724860000,100,101,99,100.5,2', // 10 good
      'sim:spot:BTCUSDT,1770724860000,100,101,99,100.5,3', // 11 duplicate
      'sim:spot:BTCUSDT,1770724800000,100,101,99,100.5,2', // 12 older
      'sim:spot:BTCUSDT,1770724920000,100,100.2,99,100.5,2', // 13 high < close
      '', // 14 blank: skipped silently
      'sim:spot:BTCUSDT,1770724920000,100,101,99,100.5,2', // 15 good
    ];
    const out = await run({ file: file(lines.join('\n')), speed: 0 });
    expect(candles(out).map((c) => c.tsOpen)).toEqual([1770724800000, 1770724860000, 1770724920000]);
    const bad = invalids(out);
    expect(bad.map((b) => Number(/^line (\d+): /.exec(b.reason)?.[1]))).toEqual([
      3, 4, 5, 6, 7, 8, 9, 11, 12, 13,
    ]);
    const reasons = bad.map((b) => b.reason);
    expect(reasons[0]).toContain('open: not a number');
    expect(reasons[1]).toContain('volume_base: missing');
    expect(reasons[2]).toContain('ts_open: bad timestamp');
    expect(reasons[3]).toContain('high 98 < low 99');
    expect(reasons[4]).toContain('invalid instrument key');
    expect(reasons[4]).not.toContain('\u001b'); // escaped in the reason
    expect(reasons[5]).toContain('invalid instrument key');
    expect(reasons[6]).toContain('not aligned');
    expect(reasons[7]).toContain('out of order: duplicate');
    expect(reasons[8]).toContain('out of order');
    expect(reasons[9]).toContain('do not enclose');
    expect(bad[0]?.raw).toBe(lines[2]);
    expect(bad[4]?.raw).toBe(lines[6]);
    expect(out.at(-1)?.ev).toMatchObject({ kind: 'state', state: 'IDLE' });
  });

  it('reports bad JSON lines, crossed and out-of-order ticks, and cuts long raw lines', async () => {
    const long = JSON.stringify({ instrument_key: 'x'.repeat(5000), bid: 1, ask: 2, ts: 1770724800000 });
    const lines = [
      JSON.stringify({ instrument_key: 'sim:fx:EURUSD', bid: 1.08, ask: 1.0801, ts: 1770724800000 }), // 1
      '{"instrument_key": "sim:fx:EURUSD", "bid": 1.08', // 2 broken JSON
      '[1,2,3]', // 3 not an object
      '{"hello":"world"}', // 4 neither
      JSON.stringify({ instrument_key: 'sim:fx:EURUSD', bid: 1.09, ask: 1.08, ts: 1770724801000 }), // 5 crossed
      JSON.stringify({ instrument_key: 'sim:fx:EURUSD', bid: 1.08, ask: 1.0801, ts: 1770724799000 }), // 6 older
      JSON.stringify({ instrument_key: 'sim:fx:EURUSD', bid: 1.08, ask: 1.0801, ts: 1770724800000 }), // 7 same ts: fine
      long, // 8
      JSON.stringify({ bid: 1, ask: 2, ts: 1770724800000 }), // 9 no key, no option
    ];
    const out = await run({ file: file(lines.join('\n'), 'jsonl'), speed: 0 });
    expect(ticks(out)).toHaveLength(2);
    const bad = invalids(out);
    expect(bad.map((b) => /^line (\d+): (.*)$/.exec(b.reason)?.slice(1, 3).join(': '))).toEqual([
      expect.stringMatching(/^2: not JSON/),
      '3: not a JSON object',
      expect.stringMatching(/^4: neither a candle/),
      '5: crossed quote: ask 1.08 < bid 1.09',
      expect.stringMatching(/^6: out of order: tick sim:fx:EURUSD/),
      expect.stringMatching(/^8: invalid instrument key/),
      expect.stringMatching(/^9: instrument_key: missing/),
    ]);
    expect(bad[5]?.raw.length).toBe(500);
    expect(bad[5]?.reason.length).toBeLessThan(200);
  });
});

describe('replay source: start errors', () => {
  it('a missing, empty, binary, compressed or unknown file is a ConfigError naming market_data.sources.replay.file', () => {
    const key = 'market_data.sources.replay.file';
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    const cases: [string, RegExp][] = [
      [join(dir, 'nope.csv'), /no such file|ENOENT/],
      [sub, /not a regular file/],
      [file(''), /empty/],
      [file('\n\n  \n'), /empty/],
      [file(Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3])), /zip archive/],
      [file(Buffer.from([0x1f, 0x8b, 8, 0, 0])), /gzip/],
      [file(Buffer.from([1, 2, 0, 3, 4])), /not a text file/],
      [file('just some words\n'), /unrecognized format/],
      [file('a,b,c\n1,2,3\n'), /unrecognized CSV header \(missing ts_open\/open_time/],
      [file('1704067200000,1,2\n'), /Binance kline columns/],
    ];
    for (const [f, message] of cases) {
      const err = configError(() => createReplaySource({ file: f, instrumentKey: BTC }));
      expect(err.key).toBe(key);
      expect(err.message).toMatch(message);
    }
    const forced = configError(() =>
      createReplaySource({ file: FIXTURE, instrumentKey: BTC, format: 'jsonl' }),
    );
    expect(forced.key).toBe(key);
  });

  it('a CSV without instrument keys needs the instrumentKey option; bad options name their key', () => {
    expect(configError(() => createReplaySource({ file: FIXTURE })).key).toBe(
      'market_data.sources.replay.instrument_key',
    );
    expect(configError(() => createReplaySource({ file: FIXTURE, instrumentKey: 'BTCUSDT' })).key).toBe(
      'market_data.sources.replay.instrument_key',
    );
    expect(configError(() => createReplaySource({ file: FIXTURE, instrumentKey: BTC, speed: -1 })).key).toBe(
      'market_data.sources.replay.speed',
    );
    const src = createReplaySource({ file: FIXTURE, instrumentKey: BTC, marketId: 5 });
    expect(src.name).toBe('replay');
    expect(src.instruments).toEqual([{ instrumentKey: BTC, symbol: 'BTCUSDT', marketId: 5 }]);
  });
});

describe('replay source: pacing, abort, progress', () => {
  it('speed 60 replays rows a minute apart one second apart', async () => {
    const rows = readFileSync(FIXTURE, 'utf8').split('\n').slice(0, 3).join('\n');
    const out = await run({ file: file(rows), instrumentKey: BTC, speed: 60 });
    const at = out.filter(({ ev }) => ev.kind === 'candle').map((s) => s.at);
    expect(at).toHaveLength(3);
    expect(at[0]).toBeLessThan(150);
    expect(at[1]).toBeGreaterThan(950);
    expect(at[1]).toBeLessThan(1250);
    expect(at[2]).toBeGreaterThan(1950);
    expect(at[2]).toBeLessThan(2300);
  });

  it('a file that disappears before the replay reports DISCONNECTED instead of throwing', async () => {
    const f = file('1704067200000,1,2,0.5,1.5,10,1704067259999,15\n');
    const src = createReplaySource({ file: f, instrumentKey: BTC, speed: 0 });
    rmSync(f);
    const seen: SourceEvent[] = [];
    for await (const ev of src.events(new AbortController().signal)) seen.push(ev);
    expect(seen.map((ev) => ev.kind)).toEqual(['state', 'state']);
    expect(seen[1]).toMatchObject({
      kind: 'state',
      state: 'DISCONNECTED',
      reason: expect.stringMatching(/ENOENT/) as string,
    });
  });

  it('stops promptly when aborted while waiting between rows', async () => {
    const src = createReplaySource({ file: FIXTURE, instrumentKey: BTC, speed: 1 });
    const ac = new AbortController();
    const seen: SourceEvent[] = [];
    let abortedAt = 0;
    for await (const ev of src.events(ac.signal)) {
      seen.push(ev);
      if (ev.kind === 'candle') {
        setTimeout(() => {
          abortedAt = performance.now();
          ac.abort();
        }, 100);
      }
    }
    expect(performance.now() - abortedAt).toBeLessThan(100);
    expect(candles(seen.map((ev) => ({ ev, at: 0 })))).toHaveLength(1);
    expect(seen.some((ev) => ev.kind === 'state' && ev.state === 'IDLE')).toBe(false);
  });

  it('streams a large file at speed 0 and reports progress in bytes up to the file size', async () => {
    const lines: string[] = [];
    const t0 = Date.UTC(2020, 0, 1);
    for (let i = 0; i < 50_000; i++) {
      const o = 100 + (i % 50);
      lines.push(
        `${t0 + i * MIN},${o},${o + 1},${o - 1},${o + 0.5},1.5,${t0 + i * MIN + 59_999},150.75,10,0.7,70.1,0`,
      );
    }
    const f = file(`${lines.join('\n')}\n`);
    const size = statSync(f).size;
    const progress: [number, number][] = [];
    const started = performance.now();
    let n = 0;
    let last = 0;
    let firstCandleProgress = -1;
    const src = createReplaySource({
      file: f,
      instrumentKey: BTC,
      speed: 0,
      onProgress: (d, t) => progress.push([d, t]),
    });
    for await (const ev of src.events(new AbortController().signal)) {
      if (ev.kind !== 'candle') continue;
      if (n === 0) firstCandleProgress = progress.at(-1)?.[0] ?? -1;
      expect(ev.candle.tsOpen).toBeGreaterThan(last);
      last = ev.candle.tsOpen;
      n += 1;
    }
    expect(n).toBe(50_000);
    expect(performance.now() - started).toBeLessThan(8000);
    expect(progress[0]).toEqual([0, size]);
    expect(progress.at(-1)).toEqual([size, size]);
    expect(firstCandleProgress).toBe(0); // the first candle comes before the file is read through
    for (let i = 1; i < progress.length; i++)
      expect(progress[i]?.[0]).toBeGreaterThanOrEqual(progress[i - 1]?.[0] ?? 0);
    expect(progress.length).toBeGreaterThan(50);
    expect(progress.length).toBeLessThan(400);
  });

  it('progressBar logs every 10 % when stderr is not a terminal, and draws a bar on a terminal', () => {
    const logged: number[] = [];
    const onProgress = progressBar('klines.csv', {
      stream: Object.assign(new Writable({ write: (_c, _e, cb) => cb() }), { isTTY: false }),
      log: (fields) => logged.push(fields.percent),
    });
    for (let done = 0; done <= 1000; done += 25) onProgress(done, 1000);
    onProgress(1000, 1000);
    expect(logged).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);

    let drawn = '';
    const tty = Object.assign(
      new Writable({
        write: (chunk: Buffer, _e, cb) => {
          drawn += chunk.toString();
          cb();
        },
      }),
      { isTTY: true, columns: 120 },
    );
    const bar = progressBar('klines.csv', { stream: tty });
    bar(0, 2_097_152);
    bar(1_048_576, 2_097_152);
    bar(2_097_152, 2_097_152); // stops the bar (and its redraw timer) at 100 %
    bar.stop();
    expect(drawn).toContain('klines.csv');
    expect(drawn).toContain('100%');
    expect(drawn).toContain('2.0/2.0 MB');
  });
});
