/** One line of a replayed file → a candle or a tick (or a RowError saying why it cannot be used). */
import {
  isInstrumentKey,
  splitInstrumentKey,
  TIMEFRAMES,
  type Timeframe,
} from '../../../contracts/catalog.js';
import { TIMEFRAME_MS, type Candle, type Tick } from '../../../contracts/candle.js';
import { errorMessage } from '../../../util/errors.js';
import { splitCsvLine } from './csv.js';
import { ALIASES, normalizeName, type Getter } from './fields.js';
import type { CsvLayout } from './format.js';
import { nonNegative, num, positive, present, RowError, short, timestamp } from './values.js';

export interface RowDefaults {
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

export type ParsedLine =
  { readonly kind: 'candle'; readonly candle: Candle } | { readonly kind: 'tick'; readonly tick: Tick };

export function parseCsvRow(layout: CsvLayout, line: string, d: RowDefaults): ParsedLine {
  const cells = splitCsvLine(line);
  const get: Getter = (f) => {
    const i = layout.columns[f];
    return i === undefined ? undefined : cells[i]?.trim();
  };
  return layout.rows === 'tick'
    ? { kind: 'tick', tick: toTick(get, d) }
    : { kind: 'candle', candle: toCandle(get, d) };
}

export function parseJsonRow(line: string, d: RowDefaults): ParsedLine {
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
