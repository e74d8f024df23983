/** The fields of a replayed row, the names each is accepted under, and the Binance kline columns. */

export type CandleField =
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
export type TickField = 'ts' | 'bid' | 'ask' | 'instrumentKey';
export type Field = CandleField | TickField;

/** Accepted names of each field, after `normalizeName` (snake_case, lower case). First wins. */
export const ALIASES: Readonly<Record<Field, readonly string[]>> = {
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
export const WIRE_NAME: Readonly<Record<Field, string>> = {
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
export const BINANCE_COLUMNS: Readonly<Partial<Record<Field, number>>> = {
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
export function normalizeName(s: string): string {
  return s
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

export type Getter = (f: Field) => unknown;
