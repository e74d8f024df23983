/**
 * The relational database of a process: PostgreSQL (`DATABASE_URL`) or the embedded PGlite under
 * `<data_dir>/pglite`. It holds the identity and strategy tables and, unless ClickHouse is configured,
 * the candle history too, all created by `RELATIONAL_MIGRATIONS`. PGlite serves one process at a time, so
 * its directory is locked by a pid file; a second process gets a clear StoreLockedError.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { StoreLockedError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { pgliteSqlDatabase } from '../sql/pglite.js';
import { createPgPool, pgSqlDatabase } from '../sql/postgres.js';
import { createSqlCandleStore } from '../history/sql/candles.js';
import type { SqlDatabase } from '../sql/executor.js';
import { runMigrations, sqlMigration, type SqlMigration } from '../sql/migrator.js';
import { CANDLE_MIGRATIONS } from '../history/sql/migrations.js';
import { IDENTITY_TABLES_0002 } from '../api/auth/migrations.js';
import { STRATEGY_TABLES_0002 } from '../strategy/migrations.js';
import { BACKTEST_MIGRATIONS } from '../backtest/migrations.js';
import type { CandleStore } from '../history/store.js';
import { isProcessAlive } from '../util/process.js';

/**
 * Every module's migrations of the relational database; the migrator runs them sorted by name.
 * `0002_identity_and_strategies` was released as one migration holding the identity tables and then
 * the strategy tables, so it stays one, composed of both modules' statements in that order.
 */
export const RELATIONAL_MIGRATIONS: readonly SqlMigration[] = [
  ...CANDLE_MIGRATIONS,
  sqlMigration('0002_identity_and_strategies', [...IDENTITY_TABLES_0002, ...STRATEGY_TABLES_0002]),
  ...BACKTEST_MIGRATIONS,
];

export interface RelationalDb {
  readonly kind: 'pglite' | 'postgres';
  readonly sql: SqlDatabase;
  /** The candle store on this database (its close() leaves the database open: close this instead). */
  readonly candles: CandleStore;
  migrate(): Promise<void>;
  /** Close the database (and release the PGlite lock). Idempotent. */
  close(): Promise<void>;
}

export interface RelationalSelection {
  readonly databaseUrl?: string | undefined;
  /** Embedded state directory (`data_dir`); PGlite lives in `<dataDir>/pglite`. Undefined: in memory. */
  readonly dataDir?: string | undefined;
}

export function openRelationalDb(sel: RelationalSelection, log: Logger): RelationalDb {
  let sql: SqlDatabase;
  let release = (): void => undefined;
  let kind: RelationalDb['kind'];
  if (sel.databaseUrl) {
    kind = 'postgres';
    sql = pgSqlDatabase(createPgPool({ url: sel.databaseUrl, logger: log }));
  } else {
    kind = 'pglite';
    let db: PGlite;
    if (sel.dataDir === undefined) db = new PGlite();
    else {
      const dir = join(resolve(sel.dataDir), 'pglite');
      release = lockDir(dir);
      db = new PGlite(dir);
    }
    db.waitReady.catch(() => undefined);
    sql = pgliteSqlDatabase(db);
  }
  // The candle store shares the database: its end() must not end it.
  const shared: SqlDatabase = {
    query: (t, p) => sql.query(t, p),
    transaction: (fn) => sql.transaction(fn),
    end: () => Promise.resolve(),
  };
  const candles = createSqlCandleStore({ kind, db: shared, name: `${kind} candle store`, logger: log });
  let closed: Promise<void> | undefined;
  return {
    kind,
    sql,
    candles,
    migrate: async () => {
      await runMigrations(sql, RELATIONAL_MIGRATIONS, { logger: log });
    },
    close: () => {
      closed ??= (async () => {
        await candles.close();
        await sql.end();
        release();
      })();
      return closed;
    },
  };
}

/** A pid file next to the PGlite directory; refuses when another live process holds it. */
function lockDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = `${dir}.lock`;
  let holder: number | undefined;
  try {
    holder = Number(readFileSync(lock, 'utf8').trim());
  } catch {
    holder = undefined;
  }
  if (holder && holder !== process.pid && isProcessAlive(holder)) throw new StoreLockedError(dir, holder);
  writeFileSync(lock, String(process.pid));
  return () => rmSync(lock, { force: true });
}
