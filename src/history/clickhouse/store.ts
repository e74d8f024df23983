/**
 * The ClickHouse CandleStore (`CLICKHOUSE_URL`): closed 1m candles in `canonical_candles_1m`, a
 * ReplacingMergeTree ordered by (instrument_key, ts_open). Works on Debian's clickhouse-server 18.16
 * and on current releases with the same SQL.
 *
 * - Writes: one batch is checked (InvalidArgumentError for anything that is not a valid 1m candle), reduced to
 *   its last candle per (instrument, ts_open), stamped with one new version and sent as RowBinary in
 *   statements of at most `maxInsertRows` rows. A batch that spans several statements is not atomic.
 * - "The later write wins": ReplacingMergeTree(version) keeps the highest version after merges, and
 *   every read of candle values uses FINAL, so rows not merged yet never show twice or stale.
 * - Times are UInt64 epoch ms; Float64 values round-trip bit for bit (see row-binary.ts, http.ts).
 */
import { withDefaults } from '../../util/defaults.js';
import { ClosedError, ConfigError, InvalidArgumentError } from '../../util/errors.js';
import { UnexpectedReplyError } from '../../bus/errors.js';
import type { Candle, CandleOrigin } from '../../contracts/candle.js';
import type { CandleStore, StoredRange } from '../store.js';
import { ClickHouseHttp, parseClickHouseUrl } from './http.js';
import { CANDLES_TABLE, migrate } from './migrations.js';
import { RowBinaryWriter } from './row-binary.js';
import { isPlainIdentifier, isWellFormed, sqlIdentifier, sqlInt, sqlString } from './sql.js';
import { nextVersion } from './version.js';

export interface ClickHouseStoreOptions {
  /**
   * The server's HTTP interface, `http(s)://[user[:password]@]host[:port][/database]`, usually from
   * `CLICKHOUSE_URL` (e.g. `http://127.0.0.1:8123`). A URL that does not parse, has another scheme, a
   * query string or a path that is not one database name is a ConfigError naming `urlKey`.
   */
  readonly url: string;
  /**
   * Database of the tables; created by `migrate()`.
   * @defaultValue the URL path, else `default`
   */
  readonly database?: string | undefined;
  /**
   * Name of the setting the URL came from, for errors.
   * @defaultValue `CLICKHOUSE_URL`
   */
  readonly urlKey?: string | undefined;
  /**
   * Timeout of one HTTP request, ms.
   * @defaultValue 30000
   */
  readonly requestTimeoutMs?: number | undefined;
  /**
   * Most rows in one INSERT statement, rows; larger batches are split.
   * @defaultValue 10000
   */
  readonly maxInsertRows?: number | undefined;
  /**
   * Most concurrent HTTP connections to the server, connections.
   * @defaultValue 10
   */
  readonly maxOpenConnections?: number | undefined;
}

/** The defaults of {@link ClickHouseStoreOptions}, applied by `createClickHouseStore`. */
export const CLICKHOUSE_STORE_DEFAULTS = Object.freeze({
  urlKey: 'CLICKHOUSE_URL',
  requestTimeoutMs: 30_000,
  maxInsertRows: 10_000,
  maxOpenConnections: 10,
} satisfies Partial<ClickHouseStoreOptions>);

const ORIGINS: ReadonlySet<string> = new Set<CandleOrigin>(['ws', 'rest', 'sim', 'replay']);

function isOrigin(s: unknown): s is CandleOrigin {
  return typeof s === 'string' && ORIGINS.has(s);
}

const INSERT_COLUMNS = [
  'instrument_key',
  'ts_open',
  'ts_close',
  'symbol',
  'market_id',
  'open',
  'high',
  'low',
  'close',
  'volume_base',
  'volume_quote',
  'source',
  'version',
] as const;

const SELECT_COLUMNS =
  'symbol, market_id, ts_open, ts_close, open, high, low, close, volume_base, volume_quote, source';

/** Create the store (no I/O yet). Call `migrate()` before the first insert. */
export function createClickHouseStore(options: ClickHouseStoreOptions): CandleStore {
  const opts = withDefaults(CLICKHOUSE_STORE_DEFAULTS, options);
  const urlKey = opts.urlKey;
  const target = parseClickHouseUrl(opts.url, urlKey);
  const database = opts.database ?? target.database ?? 'default';
  if (!isPlainIdentifier(database)) {
    throw new ConfigError(
      opts.database !== undefined ? 'clickhouse.database' : urlKey,
      `database ${JSON.stringify(database.slice(0, 80))} must be letters, digits and _ (not starting with a digit)`,
    );
  }
  const maxInsertRows = positiveInt(opts.maxInsertRows, 'clickhouse.maxInsertRows');
  const http = new ClickHouseHttp(target, {
    requestTimeoutMs: positiveInt(opts.requestTimeoutMs, 'clickhouse.requestTimeoutMs'),
    maxOpenConnections: positiveInt(opts.maxOpenConnections, 'clickhouse.maxOpenConnections'),
  });
  return new ClickHouseCandleStore(http, sqlIdentifier(database), maxInsertRows);
}

function positiveInt(v: number, key: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new ConfigError(key, `expected an integer >= 1, got ${v}`);
  return v;
}

class ClickHouseCandleStore implements CandleStore {
  readonly kind = 'clickhouse' as const;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly table: string;

  constructor(
    private readonly http: ClickHouseHttp,
    private readonly db: string,
    private readonly maxInsertRows: number,
  ) {
    this.table = `${db}.${CANDLES_TABLE}`;
  }

  async migrate(): Promise<void> {
    this.open();
    await migrate({ http: this.http, db: this.db });
  }

  async insert(candles: readonly Candle[]): Promise<void> {
    this.open();
    if (candles.length === 0) return;
    const latest = new Map<string, Candle>();
    for (const c of candles) {
      checkCandle(c);
      const k = `${c.instrumentKey}\u0000${c.tsOpen}`;
      latest.delete(k); // keep batch order of the surviving (last) writes
      latest.set(k, c);
    }
    const version = nextVersion();
    const rows = [...latest.values()];
    for (let i = 0; i < rows.length; i += this.maxInsertRows) {
      const w = new RowBinaryWriter();
      for (const c of rows.slice(i, i + this.maxInsertRows)) {
        w.string(c.instrumentKey)
          .uint64(c.tsOpen)
          .uint64(c.tsClose)
          .string(c.symbol)
          .int64(c.marketId)
          .float64(c.open)
          .float64(c.high)
          .float64(c.low)
          .float64(c.close)
          .float64(c.volumeBase)
          .nullableFloat64(c.volumeQuote)
          .string(c.origin)
          .uint64(version);
      }
      await this.http.insertRowBinary(this.table, INSERT_COLUMNS, w.finish());
    }
  }

  async range(instrumentKey: string, fromMs: number, toMs: number, limit?: number): Promise<Candle[]> {
    this.open();
    const n = rowLimit(limit, 'limit');
    const where = timeWhere(instrumentKey, fromMs, toMs);
    if (where === null || n === 0) return [];
    const rows = await this.http.rows(
      `SELECT ${SELECT_COLUMNS} FROM ${this.table} FINAL WHERE ${where} ORDER BY ts_open` +
        (n === undefined ? '' : ` LIMIT ${sqlInt(n)}`),
    );
    return rows.map((r) => toCandle(r, instrumentKey));
  }

  async last(instrumentKey: string, count: number, beforeMs?: number): Promise<Candle[]> {
    this.open();
    const n = rowLimit(count, 'count');
    const where = timeWhere(instrumentKey, -Infinity, beforeMs ?? Infinity);
    if (where === null || n === 0) return [];
    const rows = await this.http.rows(
      `SELECT ${SELECT_COLUMNS} FROM ${this.table} FINAL WHERE ${where} ORDER BY ts_open DESC` +
        (n === undefined ? '' : ` LIMIT ${sqlInt(n)}`),
    );
    return rows.map((r) => toCandle(r, instrumentKey)).reverse();
  }

  async openTimes(instrumentKey: string, fromMs: number, toMs: number): Promise<number[]> {
    this.open();
    const where = timeWhere(instrumentKey, fromMs, toMs);
    if (where === null) return [];
    // Key columns only: duplicates collapse in GROUP BY, no FINAL needed.
    const rows = await this.http.rows(
      `SELECT ts_open FROM ${this.table} WHERE ${where} GROUP BY ts_open ORDER BY ts_open`,
    );
    return rows.map((r) => msField(record(r, 'openTimes'), 'ts_open'));
  }

  async bounds(instrumentKey: string): Promise<StoredRange | null> {
    this.open();
    const rows = await this.http.rows(
      `SELECT min(ts_open) AS first_ms, max(ts_open) AS last_ms, uniqExact(ts_open) AS n ` +
        `FROM ${this.table} WHERE instrument_key = ${keyLiteral(instrumentKey)}`,
    );
    const r = record(rows[0], 'bounds');
    const count = msField(r, 'n');
    if (count === 0) return null;
    return { first: msField(r, 'first_ms'), last: msField(r, 'last_ms'), count };
  }

  async instruments(): Promise<string[]> {
    this.open();
    const rows = await this.http.rows(`SELECT DISTINCT instrument_key FROM ${this.table}`);
    // Sorted here, not by ClickHouse: the contract is JS string order (UTF-16), ClickHouse sorts bytes.
    return rows.map((r) => stringField(record(r, 'instruments'), 'instrument_key')).sort();
  }

  close(): Promise<void> {
    this.closed = true;
    this.closing ??= this.http.close();
    return this.closing;
  }

  private open(): void {
    if (this.closed) throw new ClosedError('ClickHouse candle store');
  }
}

// ---- checks of what goes in -------------------------------------------------------------------

function checkCandle(c: Candle): void {
  const bad = (what: string): never => {
    throw new InvalidArgumentError(
      'candle',
      `${what} (${JSON.stringify(c.instrumentKey)} @ ${JSON.stringify(c.tsOpen)})`,
    );
  };
  if (c.timeframe !== '1m') bad(`only 1m candles are stored, got timeframe ${JSON.stringify(c.timeframe)}`);
  if (!wellFormed(c.instrumentKey) || c.instrumentKey === '') bad('instrumentKey must be a non-empty string');
  if (!wellFormed(c.symbol)) bad('symbol must be a well-formed string');
  if (!isOrigin(c.origin)) bad(`unknown origin ${JSON.stringify(c.origin)}`);
  if (!Number.isSafeInteger(c.marketId)) bad('marketId must be a safe integer');
  for (const [name, v] of [
    ['tsOpen', c.tsOpen],
    ['tsClose', c.tsClose],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) bad(`${name} must be epoch ms >= 0`);
  }
  for (const [name, v] of [
    ['open', c.open],
    ['high', c.high],
    ['low', c.low],
    ['close', c.close],
    ['volumeBase', c.volumeBase],
  ] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${name} must be a finite number`);
  }
  if (c.volumeQuote !== null && (typeof c.volumeQuote !== 'number' || !Number.isFinite(c.volumeQuote))) {
    bad('volumeQuote must be a finite number or null');
  }
}

function wellFormed(s: unknown): s is string {
  return typeof s === 'string' && isWellFormed(s);
}

function keyLiteral(instrumentKey: string): string {
  if (typeof instrumentKey !== 'string') throw new InvalidArgumentError('instrumentKey', 'expected a string');
  return sqlString(instrumentKey);
}

/**
 * `instrument_key = … AND fromMs <= ts_open < toMs` for UInt64 ms, or null when nothing can match.
 * Bounds may be fractional or infinite; NaN is an InvalidArgumentError.
 */
function timeWhere(instrumentKey: string, fromMs: number, toMs: number): string | null {
  if (typeof fromMs !== 'number' || Number.isNaN(fromMs))
    throw new InvalidArgumentError('fromMs', 'expected a number');
  if (typeof toMs !== 'number' || Number.isNaN(toMs))
    throw new InvalidArgumentError('toMs', 'expected a number');
  const parts = [`instrument_key = ${keyLiteral(instrumentKey)}`];
  const from = Math.ceil(fromMs);
  const to = Math.ceil(toMs);
  if (to <= 0 || from >= to || from > Number.MAX_SAFE_INTEGER) return null;
  if (from > 0) parts.push(`ts_open >= ${sqlInt(from)}`);
  if (to <= Number.MAX_SAFE_INTEGER) parts.push(`ts_open < ${sqlInt(to)}`);
  return parts.join(' AND ');
}

/** A row limit: undefined or +Infinity is no limit; otherwise an integer >= 0. */
function rowLimit(n: number | undefined, name: string): number | undefined {
  if (n === undefined || n === Infinity) return undefined;
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError(name, `expected an integer >= 0, got ${n}`);
  return n;
}

// ---- checks of what comes out -----------------------------------------------------------------

type Row = Readonly<Record<string, unknown>>;

function record(r: unknown, what: string): Row {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) {
    throw new UnexpectedReplyError(`clickhouse ${what}`, r);
  }
  return r as Row;
}

function badField(r: Row, name: string): never {
  throw new UnexpectedReplyError(`clickhouse column ${name}`, r);
}

/** A (U)Int64: ClickHouse quotes 64-bit integers in JSON by default; either form is accepted. */
function msField(r: Row, name: string): number {
  const v = r[name];
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) return badField(r, name);
  return n;
}

function floatField(r: Row, name: string): number {
  const v = r[name];
  if (typeof v !== 'number') return badField(r, name);
  return v;
}

function stringField(r: Row, name: string): string {
  const v = r[name];
  if (typeof v !== 'string') return badField(r, name);
  return v;
}

function toCandle(raw: unknown, instrumentKey: string): Candle {
  const r = record(raw, 'candle row');
  const origin = stringField(r, 'source');
  if (!isOrigin(origin)) return badField(r, 'source');
  const vq = r['volume_quote'];
  return {
    instrumentKey,
    symbol: stringField(r, 'symbol'),
    marketId: msField(r, 'market_id'),
    timeframe: '1m',
    tsOpen: msField(r, 'ts_open'),
    tsClose: msField(r, 'ts_close'),
    open: floatField(r, 'open'),
    high: floatField(r, 'high'),
    low: floatField(r, 'low'),
    close: floatField(r, 'close'),
    volumeBase: floatField(r, 'volume_base'),
    volumeQuote: vq === null ? null : floatField(r, 'volume_quote'),
    origin,
  };
}
