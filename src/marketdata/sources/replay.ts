/**
 * The `replay` source: candles or ticks from a file, published in order at a chosen speed.
 *
 * Formats (detected from the first non-empty line; `format` can insist on one):
 * - CSV without a header: the Binance kline layout `open_time, open, high, low, close, volume,
 *   close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore` (at least the
 *   first six columns).
 * - CSV with a header naming the columns (Binance's own header among them): `ts_open`/`open_time`,
 *   `ts_close`/`close_time` (optional), `open`, `high`, `low`, `close`, `volume_base`/`volume`,
 *   `volume_quote`/`quote_volume` (optional), `instrument_key` (optional), `market_id` (optional). A
 *   header with `bid` and `ask` (and `ts`) makes a tick CSV instead.
 * - JSON lines: candles with the contract's field names (`instrument_key`, `market_id`, `ts_open`,
 *   `ts_close`, `open`, `high`, `low`, `close`, `volume_base`, `volume_quote`; camelCase works too), or
 *   ticks `{"instrument_key","bid","ask","ts"}` (`tick_ts`, `ts_ms` also accepted). Numbers may be
 *   JSON numbers or numeric strings.
 *
 * Times: ISO-8601 (UTC unless it names a zone) or epoch numbers whose unit is told by magnitude:
 * seconds, milliseconds, microseconds (Binance's dumps since 2025) or nanoseconds, whichever puts the
 * instant between 2000-01-01 and 2100-01-01; anything else is a bad timestamp. A candle's interval is
 * `ts_close - ts_open` (Binance's `close_time` is one millisecond short of the next open; both forms are
 * accepted) and must be 1m or 5m; without a close time it is `timeframe`. `ts_open` must be aligned
 * to the interval.
 *
 * The instrument key comes from the row, else from `instrumentKey`. Rows that cannot be used (not a
 * number, missing field, bad timestamp, high/low not enclosing open/close, invalid key) and rows out of
 * order (a candle not after the previous candle of its instrument and timeframe, a tick older than the
 * previous tick of its instrument) are reported as `invalid` with their line number and skipped.
 *
 * Pacing: with `speed` N, N× real time between consecutive event times (a candle's `tsClose`, a tick's
 * `tsMs`; never backwards). The schedule is anchored at the first event, so the average rate is right
 * even when single waits are short; after the consumer has held the replay up by more than a second
 * the schedule restarts from the current event instead of bursting to catch up. `speed` 0: no waits.
 *
 * The file is read as a stream (node:readline), one line at a time as the consumer asks for events.
 */
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { sleep } from '../../util/sleep.js';
import { isInstrumentKey, TIMEFRAMES, type Timeframe } from '../../contracts/catalog.js';
import { ConfigError, errorMessage } from '../../util/errors.js';
import type { InstrumentSpec, MarketSource, SourceEvent } from '../types.js';
import type { Candle, Tick } from '../../contracts/candle.js';
import { splitInstrumentKey } from '../../contracts/catalog.js';
import { TIMEFRAME_MS } from '../../contracts/candle.js';

const CONFIG_PREFIX = 'market_data.sources.replay';
const FILE_KEY = `${CONFIG_PREFIX}.file`;
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
/** Bytes read at start to detect the format and the instruments. */
const SAMPLE_BYTES = 64 * 1024;
/** `raw` of an invalid row is cut to this many characters. */
const RAW_MAX = 500;
/** After the consumer held the replay up by more than this (ms), pacing restarts from the current event. */
const RESYNC_AFTER_MS = 1000;
const MIN_TS = Date.UTC(2000, 0, 1);
const MAX_TS = Date.UTC(2100, 0, 1);

export type ReplayFormat = 'auto' | 'csv' | 'jsonl';

export interface ReplaySourceOptions {
  /** The file to replay (CSV or JSON lines, see the file comment). */
  readonly file: string;
  /** Instrument key of rows that carry none (required for CSV files without an `instrument_key` column). */
  readonly instrumentKey?: string;
  /** `marketId` of candles whose row has no `market_id`. Default 0 (none). */
  readonly marketId?: number;
  /** Replay speed: N × real time between event times; 0 = as fast as possible. Default 1. */
  readonly speed?: number;
  /** Force a format instead of detecting it. Default `auto`. */
  readonly format?: ReplayFormat;
  /** Interval of candles whose row has no close time. Default `1m`. */
  readonly timeframe?: Timeframe;
  /**
   * Progress in bytes: `done` of the file consumed so far, `total` its size. Called at start, every
   * 0.5 % or so, and with `done === total` at the end of the file (not after an abort).
   */
  readonly onProgress?: (done: number, total: number) => void;
  /** Source name (`md.status.<name>`). Default `replay`. */
  readonly name?: string;
}

// ---------------------------------------------------------------------------------------------------
// Fields and their names

type CandleField =
  | 'tsOpen'
  | 'tsClose'
  | 'open'
  | 'high'
  | 'low'
  | 'close'
  | 'volumeBase'
  | 'volumeQuote'
  | 'instrumentKey'
  | 'marketId';
type TickField = 'ts' | 'bid' | 'ask' | 'instrumentKey';
type Field = CandleField | TickField;

/** Accepted names of each field, after `normalizeName` (snake_case, lower case). First wins. */
const ALIASES: Readonly<Record<Field, readonly string[]>> = {
  tsOpen: ['ts_open', 'open_time', 'timestamp', 'time', 'datetime', 'date'],
  tsClose: ['ts_close', 'close_time'],
  open: ['open'],
  high: ['high'],
  low: ['low'],
  close: ['close'],
  volumeBase: ['volume_base', 'volume', 'base_volume'],
  volumeQuote: ['volume_quote', 'quote_volume', 'quote_asset_volume'],
  instrumentKey: ['instrument_key'],
  marketId: ['market_id'],
  ts: ['ts', 'tick_ts', 'ts_ms', 'timestamp', 'time'],
  bid: ['bid'],
  ask: ['ask'],
};

/** The contract's wire name of a field, for messages. */
const WIRE_NAME: Readonly<Record<Field, string>> = {
  tsOpen: 'ts_open',
  tsClose: 'ts_close',
  open: 'open',
  high: 'high',
  low: 'low',
  close: 'close',
  volumeBase: 'volume_base',
  volumeQuote: 'volume_quote',
  instrumentKey: 'instrument_key',
  marketId: 'market_id',
  ts: 'ts',
  bid: 'bid',
  ask: 'ask',
};

/** The Binance kline columns, by position. */
const BINANCE_COLUMNS: Readonly<Partial<Record<Field, number>>> = {
  tsOpen: 0,
  open: 1,
  high: 2,
  low: 3,
  close: 4,
  volumeBase: 5,
  tsClose: 6,
  volumeQuote: 7,
};

/** `tsOpen`, `Open Time`, `open-time` → `ts_open`, `open_time`, `open_time`. */
function normalizeName(s: string): string {
  return s
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

type Getter = (f: Field) => unknown;

// ---------------------------------------------------------------------------------------------------
// Values

class RowError extends Error {}

function present(v: unknown): boolean {
  return v !== undefined && v !== null && !(typeof v === 'string' && v.trim() === '');
}

const NUMBER_RE = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function num(get: Getter, f: Field): number {
  const v = get(f);
  if (!present(v)) throw new RowError(`${WIRE_NAME[f]}: missing`);
  let n = NaN;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && NUMBER_RE.test(v.trim())) n = Number(v.trim());
  if (!Number.isFinite(n)) throw new RowError(`${WIRE_NAME[f]}: not a number (${short(v)})`);
  return n;
}

function positive(get: Getter, f: Field): number {
  const n = num(get, f);
  if (n <= 0) throw new RowError(`${WIRE_NAME[f]}: must be > 0 (${n})`);
  return n;
}

function nonNegative(get: Getter, f: Field): number {
  const n = num(get, f);
  if (n < 0) throw new RowError(`${WIRE_NAME[f]}: must be ≥ 0 (${n})`);
  return n;
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** An epoch number in s, ms, µs or ns (told by magnitude), or an ISO-8601 string → integer epoch ms. */
export function parseTimestamp(v: unknown): number | null {
  let ms: number | null = null;
  if (typeof v === 'string' && ISO_RE.test(v.trim())) {
    let s = v.trim().replace(' ', 'T');
    if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(s)) s += s.includes('T') ? 'Z' : 'T00:00:00Z';
    // Date.parse takes at most milliseconds: cut longer fractions.
    s = s.replace(/(\.\d{3})\d+/, '$1');
    const t = Date.parse(s);
    ms = Number.isNaN(t) ? null : t;
  } else {
    let n = NaN;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string' && NUMBER_RE.test(v.trim())) n = Number(v.trim());
    if (!Number.isFinite(n)) return null;
    for (const perMs of [1e-3, 1, 1e3, 1e6]) {
      if (n >= MIN_TS * perMs && n < MAX_TS * perMs) {
        ms = perMs === 1e-3 ? Math.round(n * 1000) : Math.floor(n / perMs);
        break;
      }
    }
  }
  return ms !== null && ms >= MIN_TS && ms < MAX_TS ? ms : null;
}

function timestamp(get: Getter, f: Field): number {
  const v = get(f);
  if (!present(v)) throw new RowError(`${WIRE_NAME[f]}: missing`);
  const ms = parseTimestamp(v);
  if (ms === null) throw new RowError(`${WIRE_NAME[f]}: bad timestamp (${short(v)})`);
  return ms;
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

interface RowDefaults {
  readonly instrumentKey: string | undefined;
  readonly marketId: number;
  readonly timeframe: Timeframe;
}

function instrumentOf(get: Getter, d: RowDefaults): string {
  const v = get('instrumentKey');
  if (present(v)) {
    if (typeof v !== 'string' || !isInstrumentKey(v.trim())) {
      throw new RowError(`invalid instrument key ${short(v)}`);
    }
    return v.trim();
  }
  if (d.instrumentKey === undefined)
    throw new RowError('instrument_key: missing (and no instrumentKey option)');
  return d.instrumentKey;
}

function toCandle(get: Getter, d: RowDefaults): Candle {
  const instrumentKey = instrumentOf(get, d);
  const tsOpen = timestamp(get, 'tsOpen');
  let timeframe = d.timeframe;
  if (present(get('tsClose'))) {
    const span = timestamp(get, 'tsClose') - tsOpen;
    const tf = TIMEFRAMES.find((t) => TIMEFRAME_MS[t] === span || TIMEFRAME_MS[t] === span + 1);
    if (!tf) {
      throw new RowError(
        `ts_close - ts_open = ${span} ms is not a supported interval (${TIMEFRAMES.join(', ')})`,
      );
    }
    timeframe = tf;
  }
  if (tsOpen % TIMEFRAME_MS[timeframe] !== 0) {
    throw new RowError(`ts_open ${new Date(tsOpen).toISOString()} is not aligned to ${timeframe}`);
  }
  const open = positive(get, 'open');
  const high = positive(get, 'high');
  const low = positive(get, 'low');
  const close = positive(get, 'close');
  if (high < low) throw new RowError(`high ${high} < low ${low}`);
  if (high < Math.max(open, close) || low > Math.min(open, close)) {
    throw new RowError(`high/low (${high}/${low}) do not enclose open/close (${open}/${close})`);
  }
  const volumeBase = nonNegative(get, 'volumeBase');
  const volumeQuote = present(get('volumeQuote')) ? nonNegative(get, 'volumeQuote') : null;
  let marketId = d.marketId;
  if (present(get('marketId'))) {
    marketId = num(get, 'marketId');
    if (!Number.isSafeInteger(marketId) || marketId < 0) {
      throw new RowError(`market_id: expected a non-negative integer (${marketId})`);
    }
  }
  return {
    instrumentKey,
    symbol: splitInstrumentKey(instrumentKey).symbol,
    marketId,
    timeframe,
    tsOpen,
    tsClose: tsOpen + TIMEFRAME_MS[timeframe],
    open,
    high,
    low,
    close,
    volumeBase,
    volumeQuote,
    origin: 'replay',
  };
}

function toTick(get: Getter, d: RowDefaults): Tick {
  const instrumentKey = instrumentOf(get, d);
  const tsMs = timestamp(get, 'ts');
  const bid = positive(get, 'bid');
  const ask = positive(get, 'ask');
  if (ask < bid) throw new RowError(`crossed quote: ask ${ask} < bid ${bid}`);
  return { instrumentKey, symbol: splitInstrumentKey(instrumentKey).symbol, bid, ask, tsMs };
}

// ---------------------------------------------------------------------------------------------------
// Lines

/** Split one CSV line; double quotes may wrap a cell ("" is a quote inside). No multi-line cells. */
export function splitCsvLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const cells: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line.charAt(i);
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cur);
      cur = '';
    } else cur += ch;
  }
  cells.push(cur);
  return cells;
}

type Layout =
  | {
      readonly kind: 'csv';
      readonly rows: 'candle' | 'tick';
      readonly columns: Partial<Record<Field, number>>;
      readonly header: boolean;
    }
  | { readonly kind: 'jsonl' };

type ParsedLine =
  { readonly kind: 'candle'; readonly candle: Candle } | { readonly kind: 'tick'; readonly tick: Tick };

function parseCsvRow(layout: Extract<Layout, { kind: 'csv' }>, line: string, d: RowDefaults): ParsedLine {
  const cells = splitCsvLine(line);
  const get: Getter = (f) => {
    const i = layout.columns[f];
    return i === undefined ? undefined : cells[i]?.trim();
  };
  return layout.rows === 'tick'
    ? { kind: 'tick', tick: toTick(get, d) }
    : { kind: 'candle', candle: toCandle(get, d) };
}

function parseJsonRow(line: string, d: RowDefaults): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new RowError(`not JSON: ${errorMessage(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new RowError('not a JSON object');
  const fields = new Map<string, unknown>();
  for (const [k, v] of Object.entries(value)) {
    const n = normalizeName(k);
    if (!fields.has(n)) fields.set(n, v);
  }
  const get: Getter = (f) => {
    for (const name of ALIASES[f]) if (fields.has(name)) return fields.get(name);
    return undefined;
  };
  if (fields.has('bid') || fields.has('ask')) return { kind: 'tick', tick: toTick(get, d) };
  if (fields.has('open') || fields.has('close')) return { kind: 'candle', candle: toCandle(get, d) };
  throw new RowError('neither a candle (open, high, low, close) nor a tick (bid, ask)');
}

// ---------------------------------------------------------------------------------------------------
// Start: options, file, format

interface ResolvedReplay {
  readonly name: string;
  readonly file: string;
  readonly size: number;
  readonly layout: Layout;
  readonly defaults: RowDefaults;
  readonly speed: number;
  readonly instruments: readonly InstrumentSpec[];
  readonly onProgress: ((done: number, total: number) => void) | undefined;
}

function readSample(file: string): { size: number; sample: Buffer } {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ConfigError(FILE_KEY, `${file} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(FILE_KEY, `cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  }
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(Math.min(size, SAMPLE_BYTES));
    const n = readSync(fd, buf, 0, buf.length, 0);
    return { size, sample: buf.subarray(0, n) };
  } catch (err) {
    throw new ConfigError(FILE_KEY, `cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function detectLayout(
  file: string,
  sample: Buffer,
  format: ReplayFormat,
): { layout: Layout; firstLine: string } {
  if (sample[0] === 0x50 && sample[1] === 0x4b && sample[2] === 0x03 && sample[3] === 0x04) {
    throw new ConfigError(FILE_KEY, `${file} is a zip archive; unzip it and replay the CSV inside`);
  }
  if (sample[0] === 0x1f && sample[1] === 0x8b) {
    throw new ConfigError(FILE_KEY, `${file} is gzip-compressed; decompress it first`);
  }
  if (sample.includes(0)) throw new ConfigError(FILE_KEY, `${file} is not a text file (CSV or JSON lines)`);
  const text = sample.toString('utf8').replace(/^\uFEFF/, '');
  const firstLine = text
    .split(/\r?\n/)
    .find((l) => l.trim() !== '')
    ?.trim();
  if (firstLine === undefined) throw new ConfigError(FILE_KEY, `${file} is empty`);
  const isJson = firstLine.startsWith('{');
  if (format === 'jsonl' || (format === 'auto' && isJson)) {
    if (!isJson)
      throw new ConfigError(FILE_KEY, `${file} is not JSON lines: the first line is not an object`);
    return { layout: { kind: 'jsonl' }, firstLine };
  }
  const cells = splitCsvLine(firstLine).map((c) => c.trim());
  if (cells.length < 2) {
    throw new ConfigError(FILE_KEY, `${file}: unrecognized format (neither CSV nor JSON lines)`);
  }
  if (NUMBER_RE.test(cells[0] ?? '')) {
    // No header: the Binance kline layout.
    if (cells.length < 6) {
      throw new ConfigError(
        FILE_KEY,
        `${file}: a CSV without a header must have the Binance kline columns (open_time, open, high, low, close, volume, …); the first row has ${cells.length}`,
      );
    }
    return { layout: { kind: 'csv', rows: 'candle', columns: BINANCE_COLUMNS, header: false }, firstLine };
  }
  const names = cells.map(normalizeName);
  const find = (f: Field): number | undefined => {
    for (const alias of ALIASES[f]) {
      const i = names.indexOf(alias);
      if (i >= 0) return i;
    }
    return undefined;
  };
  const isTick = find('bid') !== undefined && find('ask') !== undefined;
  const fields: readonly Field[] = isTick
    ? ['ts', 'bid', 'ask', 'instrumentKey']
    : [
        'tsOpen',
        'tsClose',
        'open',
        'high',
        'low',
        'close',
        'volumeBase',
        'volumeQuote',
        'instrumentKey',
        'marketId',
      ];
  const required: readonly Field[] = isTick
    ? ['ts', 'bid', 'ask']
    : ['tsOpen', 'open', 'high', 'low', 'close', 'volumeBase'];
  const columns: Partial<Record<Field, number>> = {};
  for (const f of fields) {
    const i = find(f);
    if (i !== undefined) columns[f] = i;
  }
  const missing = required.filter((f) => columns[f] === undefined);
  if (missing.length > 0) {
    throw new ConfigError(
      FILE_KEY,
      `${file}: unrecognized CSV header (missing ${missing.map((f) => ALIASES[f].join('/')).join(', ')})`,
    );
  }
  return { layout: { kind: 'csv', rows: isTick ? 'tick' : 'candle', columns, header: true }, firstLine };
}

/** Instrument keys in the sample (JSON lines and CSV with an `instrument_key` column). */
function sampleInstruments(sample: Buffer, layout: Layout, size: number): string[] {
  const text = sample.toString('utf8').replace(/^\uFEFF/, '');
  const lines = text.split(/\r?\n/);
  // The last line of a partial sample may be cut.
  if (sample.length < size) lines.pop();
  const keys = new Set<string>();
  for (const line of lines) {
    let key: unknown;
    if (layout.kind === 'jsonl') {
      const m = /"instrument_?[kK]ey"\s*:\s*"([^"]*)"/.exec(line);
      key = m?.[1];
    } else {
      const i = layout.columns.instrumentKey;
      if (i === undefined) break;
      key = splitCsvLine(line)[i]?.trim();
    }
    if (typeof key === 'string' && isInstrumentKey(key)) keys.add(key);
  }
  return [...keys];
}

function resolveReplay(opts: ReplaySourceOptions): ResolvedReplay {
  const name = opts.name ?? 'replay';
  if (!NAME_RE.test(name)) throw new ConfigError(`${CONFIG_PREFIX}.name`, `expected ${NAME_RE.source}`);
  const speed = opts.speed ?? 1;
  if (!Number.isFinite(speed) || speed < 0) {
    throw new ConfigError(
      `${CONFIG_PREFIX}.speed`,
      `expected a number ≥ 0 (0 = as fast as possible), got ${speed}`,
    );
  }
  const timeframe = opts.timeframe ?? '1m';
  if (!(TIMEFRAMES as readonly string[]).includes(timeframe)) {
    throw new ConfigError(`${CONFIG_PREFIX}.timeframe`, `expected one of ${TIMEFRAMES.join(', ')}`);
  }
  const marketId = opts.marketId ?? 0;
  if (!Number.isSafeInteger(marketId) || marketId < 0) {
    throw new ConfigError(`${CONFIG_PREFIX}.market_id`, `expected a non-negative integer, got ${marketId}`);
  }
  const instrumentKey = opts.instrumentKey;
  if (instrumentKey !== undefined && !isInstrumentKey(instrumentKey)) {
    throw new ConfigError(
      `${CONFIG_PREFIX}.instrument_key`,
      `invalid instrument key ${JSON.stringify(instrumentKey.slice(0, 120))}: expected <exchange>:<market_type>:<SYMBOL>`,
    );
  }
  const format = opts.format ?? 'auto';
  if (!['auto', 'csv', 'jsonl'].includes(format)) {
    throw new ConfigError(`${CONFIG_PREFIX}.format`, 'expected auto, csv or jsonl');
  }
  if (typeof opts.file !== 'string' || opts.file === '') throw new ConfigError(FILE_KEY, 'missing');
  const { size, sample } = readSample(opts.file);
  const { layout } = detectLayout(opts.file, sample, format);
  if (layout.kind === 'csv' && layout.columns.instrumentKey === undefined && instrumentKey === undefined) {
    throw new ConfigError(
      `${CONFIG_PREFIX}.instrument_key`,
      `${opts.file} has no instrument_key column: name the instrument (e.g. binance:spot:BTCUSDT)`,
    );
  }
  const keys = sampleInstruments(sample, layout, size);
  if (instrumentKey !== undefined && !keys.includes(instrumentKey)) keys.unshift(instrumentKey);
  return {
    name,
    file: opts.file,
    size,
    layout,
    defaults: { instrumentKey, marketId, timeframe },
    speed,
    instruments: keys.map((k) => ({ instrumentKey: k, symbol: splitInstrumentKey(k).symbol, marketId })),
    onProgress: opts.onProgress,
  };
}

// ---------------------------------------------------------------------------------------------------
// Replay

async function* replay(r: ResolvedReplay, signal: AbortSignal): AsyncGenerator<SourceEvent, void, undefined> {
  if (signal.aborted) return;
  const input = createReadStream(r.file, { highWaterMark: 64 * 1024 });
  const rl = createInterface({ input, crlfDelay: Infinity });
  let readError: unknown = null;
  input.on('error', (err) => {
    readError = err;
    rl.close();
  });
  const onAbort = (): void => {
    rl.close();
    input.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });

  const last = new Map<string, number>();
  const counts = { candles: 0, ticks: 0, invalid: 0 };
  let lineNo = 0;
  let done = 0;
  let reported = 0;
  const reportEvery = Math.max(1, r.size / 200);
  // Pacing: event time `t` is due at anchorReal + (t - anchorEvent) / speed.
  let anchorEvent = -Infinity;
  let anchorReal = 0;
  let paceTime = -Infinity;

  const invalid = (reason: string, line: string): SourceEvent => {
    counts.invalid += 1;
    return { kind: 'invalid', reason: `line ${lineNo}: ${reason}`, raw: line.slice(0, RAW_MAX) };
  };

  try {
    r.onProgress?.(0, r.size);
    yield { kind: 'state', state: 'STREAM', reason: `replaying ${basename(r.file)}` };
    let headerPending = r.layout.kind === 'csv' && r.layout.header;
    for await (const rawLine of rl) {
      if (signal.aborted) return;
      lineNo += 1;
      done = Math.min(r.size, done + Buffer.byteLength(rawLine, 'utf8') + 1);
      if (r.onProgress && done - reported >= reportEvery) {
        reported = done;
        r.onProgress(done, r.size);
      }
      const line = lineNo === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine;
      if (line.trim() === '') continue;
      if (headerPending) {
        headerPending = false;
        continue;
      }
      let parsed: ParsedLine;
      try {
        parsed =
          r.layout.kind === 'csv' ? parseCsvRow(r.layout, line, r.defaults) : parseJsonRow(line, r.defaults);
      } catch (err) {
        if (!(err instanceof RowError)) throw err;
        yield invalid(err.message, line);
        continue;
      }
      // Order per instrument (and timeframe for candles).
      let eventTime: number;
      if (parsed.kind === 'candle') {
        const c = parsed.candle;
        const key = `c|${c.timeframe}|${c.instrumentKey}`;
        const prev = last.get(key);
        if (prev !== undefined && c.tsOpen <= prev) {
          yield invalid(
            c.tsOpen === prev
              ? `out of order: duplicate candle ${c.instrumentKey} ${c.timeframe} ts_open ${new Date(c.tsOpen).toISOString()}`
              : `out of order: candle ${c.instrumentKey} ${c.timeframe} ts_open ${new Date(c.tsOpen).toISOString()} is before ${new Date(prev).toISOString()}`,
            line,
          );
          continue;
        }
        last.set(key, c.tsOpen);
        eventTime = c.tsClose;
      } else {
        const t = parsed.tick;
        const key = `t|${t.instrumentKey}`;
        const prev = last.get(key);
        if (prev !== undefined && t.tsMs < prev) {
          yield invalid(
            `out of order: tick ${t.instrumentKey} ts ${new Date(t.tsMs).toISOString()} is before ${new Date(prev).toISOString()}`,
            line,
          );
          continue;
        }
        last.set(key, t.tsMs);
        eventTime = t.tsMs;
      }
      if (r.speed > 0) {
        paceTime = Math.max(paceTime, eventTime);
        const now = performance.now();
        if (anchorEvent === -Infinity) {
          anchorEvent = paceTime;
          anchorReal = now;
        } else {
          const due = anchorReal + (paceTime - anchorEvent) / r.speed;
          if (due > now) await sleep(due - now, signal);
          else if (now - due > RESYNC_AFTER_MS) {
            anchorEvent = paceTime;
            anchorReal = now;
          }
          if (signal.aborted) return;
        }
      }
      if (parsed.kind === 'candle') {
        counts.candles += 1;
        yield { kind: 'candle', candle: parsed.candle };
      } else {
        counts.ticks += 1;
        yield { kind: 'tick', tick: parsed.tick };
      }
    }
  } catch (err) {
    if (signal.aborted) return;
    readError ??= err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    rl.close();
    input.destroy();
  }
  if (signal.aborted) return;
  if (readError !== null) {
    yield {
      kind: 'state',
      state: 'DISCONNECTED',
      reason: `reading ${r.file} failed at line ${lineNo}: ${errorMessage(readError)}`,
    };
    return;
  }
  r.onProgress?.(r.size, r.size);
  yield {
    kind: 'state',
    state: 'IDLE',
    reason: `replay of ${basename(r.file)} finished: ${counts.candles} candles, ${counts.ticks} ticks, ${counts.invalid} invalid rows`,
  };
}

/**
 * A source that replays a file. Checks the options, that the file can be read and its format at once
 * (ConfigError naming the key); `instruments` are the `instrumentKey` option and the keys found in the
 * first 64 KiB of the file (the whole file is not read up front).
 */
export function createReplaySource(opts: ReplaySourceOptions): MarketSource {
  const r = resolveReplay(opts);
  return {
    name: r.name,
    instruments: r.instruments,
    events: (signal: AbortSignal): AsyncIterable<SourceEvent> => replay(r, signal),
  };
}
