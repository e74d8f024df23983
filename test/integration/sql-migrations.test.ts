import { PGlite } from '@electric-sql/pglite';
import { describe, expect, it } from 'vitest';
import { RELATIONAL_MIGRATIONS } from '../../src/app/open-db.js';
import { CANDLE_MIGRATIONS } from '../../src/history/sql/migrations.js';
import { BACKTEST_MIGRATIONS } from '../../src/backtest/migrations.js';
import { pgliteSqlDatabase } from '../../src/sql/pglite.js';
import { createSqlCandleStore } from '../../src/history/sql/candles.js';
import { MIGRATIONS_TABLE, migrationOrder, runMigrations, sqlMigration } from '../../src/sql/migrator.js';
import type { SqlDatabase } from '../../src/sql/executor.js';

/** The names existing databases hold in marketbus_migrations: a release may only append to these. */
const RELEASED = ['0001_candles_1m', '0002_identity_and_strategies', '0003_backtests'];

async function recorded(db: SqlDatabase): Promise<unknown[]> {
  const { rows } = await db.query(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY name`);
  return rows.map((r) => r['name']);
}

async function tables(db: SqlDatabase): Promise<unknown[]> {
  const { rows } = await db.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
  );
  return rows.map((r) => r['table_name']);
}

describe('SQL migrations registered by each module', () => {
  it('the relational database runs the released migrations under their released names, in order', async () => {
    const db = pgliteSqlDatabase(new PGlite());
    expect(migrationOrder(RELATIONAL_MIGRATIONS).map((m) => m.name)).toEqual(RELEASED);
    // Registered in any order, they still run by name (0003 references 0002's strategies table).
    const shuffled = [
      ...BACKTEST_MIGRATIONS,
      ...RELATIONAL_MIGRATIONS.filter((m) => m.name !== '0003_backtests'),
    ];
    expect(await runMigrations(db, shuffled)).toEqual(RELEASED);
    expect(await recorded(db)).toEqual(RELEASED);
    expect(await tables(db)).toEqual([
      'backtests',
      'canonical_candles_1m',
      'identity_telegram_channels',
      'identity_users',
      MIGRATIONS_TABLE,
      'strategies',
      'strategy_runs',
    ]);
    expect(await runMigrations(db, RELATIONAL_MIGRATIONS)).toEqual([]);
    await db.end();
  });

  it('a candle store alone gets the candle migrations only; the relational list adds the rest later', async () => {
    const db = pgliteSqlDatabase(new PGlite());
    const store = createSqlCandleStore({ kind: 'pglite', db, name: 'pglite candle store' });
    await store.migrate();
    expect(await recorded(db)).toEqual(CANDLE_MIGRATIONS.map((m) => m.name));
    expect(await tables(db)).toEqual(['canonical_candles_1m', MIGRATIONS_TABLE]);
    expect(await runMigrations(db, RELATIONAL_MIGRATIONS)).toEqual(RELEASED.slice(1));
    // And on a fully migrated database the candle store has nothing left to do.
    await store.migrate();
    expect(await recorded(db)).toEqual(RELEASED);
    await store.close();
    await db.end();
  });

  it('refuses a migration name registered twice', () => {
    expect(() => migrationOrder([...CANDLE_MIGRATIONS, sqlMigration('0001_candles_1m', [])])).toThrow(
      /0001_candles_1m is registered twice/,
    );
  });
});
