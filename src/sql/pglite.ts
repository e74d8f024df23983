/**
 * PGlite (PostgreSQL compiled to WASM, in this process, no server) as a {@link SqlDatabase}.
 *
 * PGlite is one connection. Its `query()` and `transaction()` share one mutex, so calls made at the
 * same time run one after another, and every unit of several statements (migrate, a chunked insert)
 * runs inside `transaction()`, where nothing else can interleave. `close()` waits for running calls.
 *
 * One data directory belongs to one PGlite at a time: two processes (or two stores in one process) on
 * the same directory would corrupt it.
 */
import { PGlite } from '@electric-sql/pglite';
import type { Logger } from '../util/log.js';
import type { SqlDatabase, SqlExecutor } from './executor.js';

export interface PgliteStoreOptions {
  /**
   * Directory of the database files, created when missing. The caller resolves it (the default of the
   * `marketbus` command is `.marketbus/pglite`). Undefined: in memory, gone at close (tests).
   * @defaultValue none (in memory)
   */
  readonly dataDir?: string;
  /**
   * Where migrations are logged.
   * @defaultValue none (nothing logged)
   */
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
