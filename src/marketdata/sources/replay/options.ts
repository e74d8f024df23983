/** The options of the replay source, checked and resolved (file read, format detected) at creation. */
import { withDefaults } from '../../../util/defaults.js';
import type { Timeframe } from '../../../contracts/catalog.js';
import { isInstrumentKey, splitInstrumentKey, TIMEFRAMES } from '../../../contracts/catalog.js';
import { ConfigError } from '../../../util/errors.js';
import type { InstrumentSpec } from '../../types.js';
import {
  detectLayout,
  FILE_KEY,
  readSample,
  sampleInstruments,
  type Layout,
  type ReplayFormat,
} from './format.js';
import type { RowDefaults } from './rows.js';

const CONFIG_PREFIX = 'market_data.sources.replay';
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;

export interface ReplaySourceOptions {
  /** The file to replay (CSV or JSON lines, see `source.ts`). */
  readonly file: string;
  /**
   * Instrument key of rows that carry none (required for CSV files without an `instrument_key` column).
   * @defaultValue none
   */
  readonly instrumentKey?: string | undefined;
  /**
   * `marketId` of candles whose row has no `market_id` (0 is none).
   * @defaultValue 0
   */
  readonly marketId?: number | undefined;
  /**
   * Replay speed: N × real time between event times; 0 = as fast as possible.
   * @defaultValue 1
   */
  readonly speed?: number | undefined;
  /**
   * Force a format instead of detecting it.
   * @defaultValue `auto`
   */
  readonly format?: ReplayFormat | undefined;
  /**
   * Interval of candles whose row has no close time.
   * @defaultValue `1m`
   */
  readonly timeframe?: Timeframe | undefined;
  /**
   * Progress in bytes: `done` of the file consumed so far, `total` its size. Called at start, every
   * 0.5 % or so, and with `done === total` at the end of the file (not after an abort).
   * @defaultValue none (not reported)
   */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
  /**
   * Source name (`md.status.<name>`).
   * @defaultValue `replay`
   */
  readonly name?: string | undefined;
}

/** The defaults of {@link ReplaySourceOptions}, applied by `resolveReplay`. */
export const REPLAY_SOURCE_DEFAULTS = Object.freeze({
  marketId: 0,
  speed: 1,
  format: 'auto',
  timeframe: '1m',
  name: 'replay',
} satisfies Partial<ReplaySourceOptions>);

export interface ResolvedReplay {
  readonly name: string;
  readonly file: string;
  readonly size: number;
  readonly layout: Layout;
  readonly defaults: RowDefaults;
  readonly speed: number;
  readonly instruments: readonly InstrumentSpec[];
  readonly onProgress: ((done: number, total: number) => void) | undefined;
}

export function resolveReplay(options: ReplaySourceOptions): ResolvedReplay {
  const opts = withDefaults(REPLAY_SOURCE_DEFAULTS, options);
  const name = opts.name;
  if (!NAME_RE.test(name)) throw new ConfigError(`${CONFIG_PREFIX}.name`, `expected ${NAME_RE.source}`);
  const speed = opts.speed;
  if (!Number.isFinite(speed) || speed < 0) {
    throw new ConfigError(
      `${CONFIG_PREFIX}.speed`,
      `expected a number ≥ 0 (0 = as fast as possible), got ${speed}`,
    );
  }
  const timeframe = opts.timeframe;
  if (!(TIMEFRAMES as readonly string[]).includes(timeframe)) {
    throw new ConfigError(`${CONFIG_PREFIX}.timeframe`, `expected one of ${TIMEFRAMES.join(', ')}`);
  }
  const marketId = opts.marketId;
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
  const format = opts.format;
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
