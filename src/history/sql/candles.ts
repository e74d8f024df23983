/**
 * The candle SQL shared by the PostgreSQL and PGlite stores, and the CandleStore built on it.
 *
 * Writes: one `INSERT ... SELECT FROM unnest($1::text[], ...) ON CONFLICT (instrument_key, ts_open) DO
 * UPDATE` per chunk of {@link UPSERT_CHUNK_ROWS} candles. Each column travels as one array bind
 * parameter, so a statement has 12 parameters however many rows it carries (no 65,535-parameter
 * ceiling, one statement text for every batch) and no value is ever part of the SQL text. A batch of
 * several chunks runs in one transaction: an insert is all or nothing.
 *
 * "The later write wins": across calls by ON CONFLICT DO UPDATE (every column but the key, and
 * `ingested_at` set to now()); inside one call by keeping only the last candle per (instrument, open
 * time) before building statements — PostgreSQL refuses to update the same row twice in one statement.
 *
 * Times: the columns are timestamptz; JS epoch milliseconds go in through `to_timestamp(ms / 1000)`
 * (exact: PostgreSQL rounds to whole microseconds) and come out as `extract(epoch) * 1000` cast to
 * float8, so neither driver's Date or time zone handling is involved. Reads order by ts_open, which the
 * primary key (instrument_key, ts_open) serves as an index range scan.
 */
import { withDefaults } from '../../util/defaults.js';
import { ClosedError, InvalidArgumentError } from '../../util/errors.js';
import { UnexpectedReplyError } from '../../bus/errors.js';
import { silentLogger, type Logger } from '../../util/log.js';
import type { Candle, CandleOrigin } from '../../contracts/candle.js';
import type { CandleStore, StoreKind, StoredRange } from '../store.js';
import {
  nullableNumberColumn,
  numberColumn,
  stringColumn,
  type SqlDatabase,
  type SqlRow,
  type SqlStatement,
} from '../../sql/executor.js';
import { runMigrations } from '../../sql/migrator.js';
import { CANDLE_MIGRATIONS, CANDLES_TABLE } from './migrations.js';

const MINUTE_MS = 60_000;

/** Candles per INSERT statement. 2,000 candles are 2 statements, 10,000 are 10. */
export const UPSERT_CHUNK_ROWS = 1000;

const ORIGINS: readonly CandleOrigin[] = ['ws', 'rest', 'sim', 'replay'];

const UPSERT_SQL = `
INSERT INTO ${CANDLES_TABLE} AS c (
  instrument_key, ts_open, ts_close, market_id, symbol,
  open, high, low, close, volume_base, volume_quote, source
)
SELECT u.instrument_key, to_timestamp(u.ts_open_ms / 1000), to_timestamp(u.ts_close_ms / 1000),
       u.market_id, u.symbol, u.open, u.high, u.low, u.close, u.volume_base, u.volume_quote, u.source
FROM unnest(
  $1::text[], $2::float8[], $3::float8[], $4::bigint[], $5::text[], $6::float8[],
  $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::text[]
) AS u(instrument_key, ts_open_ms, ts_close_ms, market_id, symbol, open, high, low, close,
       volume_base, volume_quote, source)
ON CONFLICT (instrument_key, ts_open) DO UPDATE SET
  ts_close = EXCLUDED.ts_close,
  market_id = EXCLUDED.market_id,
  symbol = EXCLUDED.symbol,
  open = EXCLUDED.open,
  high = EXCLUDED.high,
  low = EXCLUDED.low,
  close = EXCLUDED.close,
  volume_base = EXCLUDED.volume_base,
  volume_quote = EXCLUDED.volume_quote,
  source = EXCLUDED.source,
  ingested_at = now()`;

const MS = (col: string): string => `round(extract(epoch FROM ${col}) * 1000)::float8`;

const CANDLE_COLUMNS = `instrument_key, symbol, market_id::float8 AS market_id,
  ${MS('ts_open')} AS ts_open_ms, ${MS('ts_close')} AS ts_close_ms,
  open, high, low, close, volume_base, volume_quote, source`;

/** A JS epoch-ms bound as timestamptz (float8 so ±Infinity map to ±infinity). */
const TS = (param: string): string => `to_timestamp(${param}::float8 / 1000)`;

const RANGE_SQL = `
SELECT ${CANDLE_COLUMNS} FROM ${CANDLES_TABLE}
WHERE instrument_key = $1 AND ts_open >= ${TS('$2')} AND ts_open < ${TS('$3')}
ORDER BY ts_open
LIMIT $4::bigint`;

const LAST_SQL = `
SELECT * FROM (
  SELECT ${CANDLE_COLUMNS} FROM ${CANDLES_TABLE}
  WHERE instrument_key = $1 AND ts_open < ${TS('$2')}
  ORDER BY ts_open DESC
  LIMIT $3::bigint
) newest
ORDER BY ts_open_ms`;

const OPEN_TIMES_SQL = `
SELECT ${MS('ts_open')} AS ts_open_ms FROM ${CANDLES_TABLE}
WHERE instrument_key = $1 AND ts_open >= ${TS('$2')} AND ts_open < ${TS('$3')}
ORDER BY ts_open`;

const BOUNDS_SQL = `
SELECT ${MS('min(ts_open)')} AS first_ms, ${MS('max(ts_open)')} AS last_ms, count(*)::float8 AS n
FROM ${CANDLES_TABLE} WHERE instrument_key = $1`;

/**
 * Distinct keys by walking the primary-key index from one key to the next (a "loose index scan"):
 * one index probe per instrument instead of reading every candle.
 */
const INSTRUMENTS_SQL = `
WITH RECURSIVE k(instrument_key) AS (
  (SELECT instrument_key FROM ${CANDLES_TABLE} ORDER BY instrument_key LIMIT 1)
  UNION ALL
  SELECT (SELECT c.instrument_key FROM ${CANDLES_TABLE} c
          WHERE c.instrument_key > k.instrument_key ORDER BY c.instrument_key LIMIT 1)
  FROM k WHERE k.instrument_key IS NOT NULL
)
SELECT instrument_key FROM k WHERE instrument_key IS NOT NULL ORDER BY instrument_key`;

function finiteNumber(c: Candle, field: keyof Candle, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new InvalidArgumentError(
      'candle',
      `${c.instrumentKey} @${c.tsOpen}: ${field} is not a finite number`,
    );
}

/**
 * What a row must be to be stored faithfully: a closed 1m candle on the minute, finite numbers, a
 * known origin. Market sanity (high >= low, ...) is the feed's check (marketdata/validate.ts).
 */
export function assertStorableCandle(c: Candle): void {
  if (c.timeframe !== '1m') {
    throw new InvalidArgumentError(
      'candle',
      `only 1m candles are stored; got ${JSON.stringify(c.timeframe)} for ${c.instrumentKey}`,
    );
  }
  if (typeof c.instrumentKey !== 'string' || c.instrumentKey === '') {
    throw new InvalidArgumentError('candle', 'no instrument key');
  }
  if (!Number.isSafeInteger(c.tsOpen) || c.tsOpen % MINUTE_MS !== 0) {
    throw new InvalidArgumentError(
      'candle',
      `${c.instrumentKey}: ts_open ${c.tsOpen} is not a whole minute in epoch ms`,
    );
  }
  if (c.tsClose !== c.tsOpen + MINUTE_MS) {
    throw new InvalidArgumentError(
      'candle',
      `${c.instrumentKey} @${c.tsOpen}: ts_close ${c.tsClose} is not ts_open + 60000`,
    );
  }
  if (!Number.isSafeInteger(c.marketId)) {
    throw new InvalidArgumentError(
      'candle',
      `${c.instrumentKey} @${c.tsOpen}: market_id ${c.marketId} is not an integer`,
    );
  }
  finiteNumber(c, 'open', c.open);
  finiteNumber(c, 'high', c.high);
  finiteNumber(c, 'low', c.low);
  finiteNumber(c, 'close', c.close);
  finiteNumber(c, 'volumeBase', c.volumeBase);
  if (c.volumeQuote !== null) finiteNumber(c, 'volumeQuote', c.volumeQuote);
  if (!ORIGINS.includes(c.origin)) {
    throw new InvalidArgumentError(
      'candle',
      `${c.instrumentKey} @${c.tsOpen}: unknown origin ${JSON.stringify(c.origin)}`,
    );
  }
}

/**
 * The upsert statements for a batch: validated (InvalidArgumentError before anything is written), one candle per
 * (instrument, ts_open) with the last one winning, then chunks of `chunkRows` rows.
 */
export function upsertStatements(candles: readonly Candle[], chunkRows = UPSERT_CHUNK_ROWS): SqlStatement[] {
  for (const c of candles) assertStorableCandle(c);
  const latest = new Map<string, Candle>();
  for (const c of candles) latest.set(`${c.tsOpen}|${c.instrumentKey}`, c);
  const rows = [...latest.values()];
  const statements: SqlStatement[] = [];
  for (let i = 0; i < rows.length; i += chunkRows) {
    const chunk = rows.slice(i, i + chunkRows);
    statements.push({
      text: UPSERT_SQL,
      params: [
        chunk.map((c) => c.instrumentKey),
        chunk.map((c) => c.tsOpen),
        chunk.map((c) => c.tsClose),
        chunk.map((c) => c.marketId),
        chunk.map((c) => c.symbol),
        chunk.map((c) => c.open),
        chunk.map((c) => c.high),
        chunk.map((c) => c.low),
        chunk.map((c) => c.close),
        chunk.map((c) => c.volumeBase),
        chunk.map((c) => c.volumeQuote),
        chunk.map((c) => c.origin),
      ],
    });
  }
  return statements;
}

function originColumn(row: SqlRow): CandleOrigin {
  const s = stringColumn(row, 'source');
  const origin = ORIGINS.find((o) => o === s);
  if (origin === undefined) throw new UnexpectedReplyError('candle row source', s);
  return origin;
}

function candleFromRow(row: SqlRow): Candle {
  return {
    instrumentKey: stringColumn(row, 'instrument_key'),
    symbol: stringColumn(row, 'symbol'),
    marketId: numberColumn(row, 'market_id'),
    timeframe: '1m',
    tsOpen: numberColumn(row, 'ts_open_ms'),
    tsClose: numberColumn(row, 'ts_close_ms'),
    open: numberColumn(row, 'open'),
    high: numberColumn(row, 'high'),
    low: numberColumn(row, 'low'),
    close: numberColumn(row, 'close'),
    volumeBase: numberColumn(row, 'volume_base'),
    volumeQuote: nullableNumberColumn(row, 'volume_quote'),
    origin: originColumn(row),
  };
}

/** A time bound in epoch ms: any number but NaN (±Infinity are open ends). */
function timeBound(name: string, v: number): number {
  if (typeof v !== 'number' || Number.isNaN(v))
    throw new InvalidArgumentError(name, `must be epoch ms, got ${String(v)}`);
  return v;
}

function rowCount(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new InvalidArgumentError(name, `must be a whole number >= 0, got ${v}`);
  return v;
}

export interface SqlCandleStoreOptions {
  /** The adapter's kind, reported by the store. */
  readonly kind: StoreKind;
  /** The database the candles live in. */
  readonly db: SqlDatabase;
  /** What `closed` errors call the store, e.g. `postgres candle store`. */
  readonly name: string;
  /**
   * Where store warnings are logged.
   * @defaultValue `silentLogger`
   */
  readonly logger?: Logger | undefined;
}

/** The defaults of {@link SqlCandleStoreOptions}, applied by `createSqlCandleStore`. */
export const SQL_CANDLE_STORE_DEFAULTS = Object.freeze({
  logger: silentLogger,
} satisfies Partial<SqlCandleStoreOptions>);

/** The CandleStore over any {@link SqlDatabase}; the adapters only build the database. */
export function createSqlCandleStore(opts: SqlCandleStoreOptions): CandleStore {
  const { db, kind, name, logger } = withDefaults(SQL_CANDLE_STORE_DEFAULTS, opts);
  let closing: Promise<void> | undefined;

  const open = (): void => {
    if (closing !== undefined) throw new ClosedError(name);
  };

  return {
    kind,

    async migrate(): Promise<void> {
      open();
      // Only the candle table: other modules' migrations are the relational database's (app/open-db.ts).
      const applied = await runMigrations(db, CANDLE_MIGRATIONS, { logger, partial: true });
      if (applied.length > 0) logger.info({ applied, store: kind }, 'candle store migrated');
    },

    async insert(candles: readonly Candle[]): Promise<void> {
      open();
      const statements = upsertStatements(candles);
      const [only] = statements;
      if (only === undefined) return;
      if (statements.length === 1) {
        await db.query(only.text, only.params);
        return;
      }
      await db.transaction(async (tx) => {
        for (const s of statements) await tx.query(s.text, s.params);
      });
    },

    async range(instrumentKey: string, fromMs: number, toMs: number, limit?: number): Promise<Candle[]> {
      open();
      const params = [
        instrumentKey,
        timeBound('fromMs', fromMs),
        timeBound('toMs', toMs),
        limit === undefined ? null : rowCount('limit', limit),
      ];
      const { rows } = await db.query(RANGE_SQL, params);
      return rows.map(candleFromRow);
    },

    async last(instrumentKey: string, count: number, beforeMs = Infinity): Promise<Candle[]> {
      open();
      if (rowCount('count', count) === 0) return [];
      const { rows } = await db.query(LAST_SQL, [instrumentKey, timeBound('beforeMs', beforeMs), count]);
      return rows.map(candleFromRow);
    },

    async openTimes(instrumentKey: string, fromMs: number, toMs: number): Promise<number[]> {
      open();
      const params = [instrumentKey, timeBound('fromMs', fromMs), timeBound('toMs', toMs)];
      const { rows } = await db.query(OPEN_TIMES_SQL, params);
      return rows.map((r) => numberColumn(r, 'ts_open_ms'));
    },

    async bounds(instrumentKey: string): Promise<StoredRange | null> {
      open();
      const { rows } = await db.query(BOUNDS_SQL, [instrumentKey]);
      const row = rows[0];
      if (row === undefined || numberColumn(row, 'n') === 0) return null;
      return {
        first: numberColumn(row, 'first_ms'),
        last: numberColumn(row, 'last_ms'),
        count: numberColumn(row, 'n'),
      };
    },

    async instruments(): Promise<string[]> {
      open();
      const { rows } = await db.query(INSTRUMENTS_SQL);
      return rows.map((r) => stringColumn(r, 'instrument_key'));
    },

    close(): Promise<void> {
      closing ??= db.end();
      return closing;
    },
  };
}
