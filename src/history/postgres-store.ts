/**
 * CandleStore on a PostgreSQL server. The SQL, the migrations and the behaviour are shared with the
 * PGlite store (`history/sql/`); the pool is `sql/postgres.ts`'s. Connections are opened on first use,
 * so this does not fail when the server is down; `migrate()` (or any call) does. A URL that cannot be
 * used throws ConfigError now.
 */
import { createPgPool, pgSqlDatabase, type PostgresStoreOptions } from '../sql/postgres.js';
import { createSqlCandleStore } from './sql/candles.js';
import type { CandleStore } from './store.js';

export function createPostgresStore(opts: PostgresStoreOptions): CandleStore {
  const pool = createPgPool(opts);
  return createSqlCandleStore({
    kind: 'postgres',
    db: pgSqlDatabase(pool),
    name: 'postgres candle store',
    logger: opts.logger,
  });
}
