/**
 * The schema migrator of the SQL databases (PostgreSQL and PGlite), run by umzug. It owns no tables
 * but its bookkeeping: each module registers its own migrations (candles in `history/sql/`, identity
 * in `api/auth/`, strategies in `strategy/`, backtests in `backtest/`), and the caller passes the
 * list it needs (the whole relational database: `app/open-db.ts`; a candle store alone: the candle
 * migrations).
 *
 * `runMigrations` does everything in one transaction on one connection:
 *   1. `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`: a second process running it at the same time waits
 *      here; the lock is released by COMMIT/ROLLBACK, so a crashed migrator never leaves it held;
 *   2. creates the bookkeeping table `marketbus_migrations` if it is missing (after the lock, so two
 *      first-time migrators do not race on CREATE TABLE);
 *   3. lets umzug apply the pending migrations in name order, recording each in
 *      `marketbus_migrations` through the same transaction.
 * PostgreSQL DDL is transactional, so a failing migration leaves neither its tables nor its record,
 * and the waiting process then sees exactly what the first one committed.
 *
 * Migrations are forward-only and append-only: never edit or rename a released one (existing
 * databases hold its name in `marketbus_migrations`); add one with the next free number. Names are
 * global across modules and run sorted by name, so the number alone decides the order.
 * A future migration that cannot run inside a transaction (CREATE INDEX CONCURRENTLY) needs its own
 * path; none exists yet.
 */
import { Umzug, type RunnableMigration, type UmzugStorage } from 'umzug';
import { withDefaults } from '../util/defaults.js';
import { silentLogger, type Logger } from '../util/log.js';
import { InvalidArgumentError } from '../util/errors.js';
import { stringColumn, type SqlDatabase, type SqlExecutor } from './executor.js';

/** Table that records applied migrations (one row per migration name). */
export const MIGRATIONS_TABLE = 'marketbus_migrations';

/**
 * Key of the transaction-level advisory lock around `runMigrations` (an arbitrary constant: the
 * ASCII of "mktbmigr"). Every marketbus process uses the same key for the same database.
 */
export const MIGRATION_LOCK_KEY = '7884523538733426546';

/** One migration; its context is the executor of the migrating transaction. */
export type SqlMigration = RunnableMigration<SqlExecutor>;

/** A migration that runs `statements` one after the other, in the migrating transaction. */
export function sqlMigration(name: string, statements: readonly string[]): SqlMigration {
  return {
    name,
    up: async ({ context }) => {
      for (const statement of statements) await context.query(statement);
    },
  };
}

/**
 * `migrations` sorted by name (byte order, as `marketbus_migrations.name` is collated "C"), so the
 * order in which modules register them does not matter. Throws on a name given twice.
 */
export function migrationOrder(migrations: readonly SqlMigration[]): SqlMigration[] {
  const sorted = [...migrations].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const name = sorted[i]?.name;
    if (name === sorted[i - 1]?.name)
      throw new InvalidArgumentError('migrations', `migration ${String(name)} is registered twice`);
  }
  return sorted;
}

const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
  name text COLLATE "C" PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/** umzug storage in `marketbus_migrations`, through the migrating transaction (umzug's context). */
export function migrationTableStorage(): UmzugStorage<SqlExecutor> {
  return {
    async executed({ context }) {
      const { rows } = await context.query(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY name`);
      return rows.map((r) => stringColumn(r, 'name'));
    },
    async logMigration({ name, context }) {
      await context.query(`INSERT INTO ${MIGRATIONS_TABLE} (name) VALUES ($1)`, [name]);
    },
    async unlogMigration({ name, context }) {
      await context.query(`DELETE FROM ${MIGRATIONS_TABLE} WHERE name = $1`, [name]);
    },
  };
}

export interface RunMigrationsOptions {
  /**
   * Where umzug's progress and the unknown-migrations warning go.
   * @defaultValue `silentLogger` (nothing logged)
   */
  readonly logger?: Logger;
  /**
   * True when `migrations` are one module's only (a candle store opened alone): the database may
   * then hold other modules' migrations, which are not warned about. False: `migrations` are every
   * migration of this build, and a recorded name outside them means a newer marketbus ran.
   * @defaultValue false
   */
  readonly partial?: boolean;
}

/** The defaults of {@link RunMigrationsOptions}, applied by `runMigrations`. */
export const RUN_MIGRATIONS_DEFAULTS = Object.freeze({
  logger: silentLogger,
  partial: false,
} satisfies Partial<RunMigrationsOptions>);

/**
 * Apply the pending ones of `migrations` under the advisory lock, in one transaction, in name order.
 * Returns the names applied by this call (empty when the database was already up to date). Safe to
 * run from several processes.
 */
export async function runMigrations(
  db: SqlDatabase,
  migrations: readonly SqlMigration[],
  options: RunMigrationsOptions = {},
): Promise<string[]> {
  const opts = withDefaults(RUN_MIGRATIONS_DEFAULTS, options);
  const logger = opts.logger;
  const ordered = migrationOrder(migrations);
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    await tx.query(CREATE_MIGRATIONS_TABLE);
    const umzug = new Umzug<SqlExecutor>({
      migrations: ordered,
      context: tx,
      storage: migrationTableStorage(),
      logger: {
        info: (m) => logger.info(m, 'migration'),
        warn: (m) => logger.warn(m, 'migration'),
        error: (m) => logger.error(m, 'migration'),
        debug: (m) => logger.debug(m, 'migration'),
      },
    });
    if (!opts.partial) {
      const known = new Set(ordered.map((m) => m.name));
      const unknown = (await migrationTableStorage().executed({ context: tx })).filter((n) => !known.has(n));
      if (unknown.length > 0) {
        logger.warn(
          { unknown },
          'the database has migrations this build does not know (a newer marketbus ran)',
        );
      }
    }
    const applied = await umzug.up();
    return applied.map((m) => m.name);
  });
}
