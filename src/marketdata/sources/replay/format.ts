/**
 * The replayed file and its format: a sample of its first 64 KiB tells CSV (Binance klines without a
 * header, or a header naming the columns) from JSON lines, refuses archives and binary files, and
 * names the instruments found in it.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { isInstrumentKey } from '../../../contracts/catalog.js';
import { ConfigError, errorMessage } from '../../../util/errors.js';
import { splitCsvLine } from './csv.js';
import { ALIASES, BINANCE_COLUMNS, normalizeName, type Field } from './fields.js';
import { NUMBER_RE } from './values.js';

/** The config key of the replayed file, named by every ConfigError about the file. */
export const FILE_KEY = 'market_data.sources.replay.file';
/** Bytes read at start to detect the format and the instruments. */
const SAMPLE_BYTES = 64 * 1024;

export type ReplayFormat = 'auto' | 'csv' | 'jsonl';

export interface CsvLayout {
  readonly kind: 'csv';
  readonly rows: 'candle' | 'tick';
  readonly columns: Partial<Record<Field, number>>;
  readonly header: boolean;
}

export type Layout = CsvLayout | { readonly kind: 'jsonl' };

export function readSample(file: string): { size: number; sample: Buffer } {
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

export function detectLayout(
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
export function sampleInstruments(sample: Buffer, layout: Layout, size: number): string[] {
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
