/**
 * CandleStore on PGlite: same SQL, migrations and behaviour as the PostgreSQL store (`history/sql/`).
 */
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { pgliteSqlDatabase, type PgliteStoreOptions } from '../sql/pglite.js';
import { createSqlCandleStore } from './sql/candles.js';
import type { CandleStore } from './store.js';

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
    logger: opts.logger,
  });
}
