/**
 * CandleStore on PGlite: PostgreSQL compiled to WASM, in this process, no server. Same SQL, migrations
 * and behaviour as the PostgreSQL store (src/history/sql/).
 *
 * PGlite is one connection. Its `query()` and `transaction()` share one mutex, so calls made at the
 * same time run one after another, and every unit of several statements (migrate, a chunked insert)
 * runs inside `transaction()`, where nothing else can interleave. `close()` waits for running calls.
 *
 * One data directory belongs to one PGlite at a time: two processes (or two stores in one process) on
 * the same directory would corrupt it.
 */
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { silentLogger, type Logger } from '../log.js';
import { createSqlCandleStore } from './sql/candles.js';
import type { SqlDatabase, SqlExecutor } from './sql/executor.js';
import type { CandleStore } from './store.js';

export interface PgliteStoreOptions {
  /**
   * Directory of the database files, created when missing. The caller resolves it (the default of the
   * `marketbus` command is `.marketbus/pglite`). Undefined: in memory, gone at close (tests).
   */
  readonly dataDir?: string;
  /** Where migrations are logged. Default: silent. */
  readonly logger?: Logger;
}

/** A {@link SqlDatabase} over one PGlite instance. `end()` closes it, once. */
export function pgliteSqlDatabase(db: PGlite): SqlDatabase {
  let ended: Promise<void> | undefined;
  const end = async (): Promise<void> => {
    try {
      await db.waitReady;
    } catch {
      return; // it never started: nothing to close (the start error was reported to the first call)
    }
    if (!db.closed) await db.close();
  };
  return {
    query: (text, params) => db.query(text, params),
    transaction: <T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> => db.transaction((tx) => fn(tx)),
    end(): Promise<void> {
      ended ??= end();
      return ended;
    },
  };
}

/**
 * Open (or create) the PGlite database and return its store at once. PGlite starts in the background
 * (a few seconds for a new database); the first call waits for it and fails if it could not start.
 */
export function createPgliteStore(opts: PgliteStoreOptions = {}): CandleStore {
  if (opts.dataDir !== undefined) mkdirSync(opts.dataDir, { recursive: true });
  const db = opts.dataDir === undefined ? new PGlite() : new PGlite(opts.dataDir);
  // Every call awaits the start itself; this only keeps a failed start from being an unhandled rejection.
  db.waitReady.catch(() => undefined);
  return createSqlCandleStore({
    kind: 'pglite',
    db: pgliteSqlDatabase(db),
    name: 'pglite candle store',
    logger: opts.logger ?? silentLogger,
  });
}
