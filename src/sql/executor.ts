/**
 * The smallest surface the SQL candle store needs from a PostgreSQL driver. `pg.Pool`, `pg.PoolClient`,
 * `PGlite` and a PGlite transaction all satisfy {@link SqlExecutor} as they are (their `query(text,
 * params)` resolves to `{ rows }`); {@link SqlDatabase} adds the two things that differ between them:
 * how a unit of several statements gets one connection, and how the whole thing is shut down.
 */
import { UnexpectedReplyError } from '../bus/errors.js';

/** One result row, column name to value as the driver parsed it. */
export type SqlRow = Record<string, unknown>;

/** Runs one statement with `$1..$n` bind parameters (never values spliced into the text). */
export interface SqlExecutor {
  query(text: string, params?: unknown[]): Promise<{ rows: SqlRow[] }>;
}

/** A statement and its bind parameters. */
export interface SqlStatement {
  readonly text: string;
  readonly params: unknown[];
}

export interface SqlDatabase extends SqlExecutor {
  /**
   * Run `fn` between BEGIN and COMMIT on one connection (ROLLBACK when it throws). Nothing else runs on
   * that connection meanwhile: pg checks a client out of the pool; PGlite holds its transaction mutex.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Release every connection. Called once by the store's idempotent `close()`. */
  end(): Promise<void>;
}

/** A number column; both drivers parse `double precision` to a JS number (query casts ensure that type). */
export function numberColumn(row: SqlRow, column: string): number {
  const v = row[column];
  if (typeof v === 'number') return v;
  throw new UnexpectedReplyError(`SQL column ${column}`, row);
}

export function nullableNumberColumn(row: SqlRow, column: string): number | null {
  return row[column] === null ? null : numberColumn(row, column);
}

export function stringColumn(row: SqlRow, column: string): string {
  const v = row[column];
  if (typeof v === 'string') return v;
  throw new UnexpectedReplyError(`SQL column ${column}`, row);
}
