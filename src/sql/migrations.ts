/**
 * Schema migrations of the SQL candle stores (PostgreSQL and PGlite), run by umzug.
 *
 * `runMigrations` does everything in one transaction on one connection:
 *   1. `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`: a second process running it at the same time waits
 *      here; the lock is released by COMMIT/ROLLBACK, so a crashed migrator never leaves it held;
 *   2. creates the bookkeeping table `marketbus_migrations` if it is missing (after the lock, so two
 *      first-time migrators do not race on CREATE TABLE);
 *   3. lets umzug apply the pending migrations, recording each in `marketbus_migrations` through
 *      the same transaction.
 * PostgreSQL DDL is transactional, so a failing migration leaves neither its tables nor its record,
 * and the waiting process then sees exactly what the first one committed.
 *
 * Migrations are forward-only and append-only: never edit or rename a released one, add `0002_...`.
 * A future migration that cannot run inside a transaction (CREATE INDEX CONCURRENTLY) needs its own
 * path; none exists yet.
 */
import { Umzug, type RunnableMigration, type UmzugStorage } from 'umzug';
import { silentLogger, type Logger } from '../util/log.js';
import { stringColumn, type SqlDatabase, type SqlExecutor } from './executor.js';

/** Table that records applied migrations (one row per migration name). */
export const MIGRATIONS_TABLE = 'marketbus_migrations';

/**
 * Key of the transaction-level advisory lock around `runMigrations` (an arbitrary constant: the
 * ASCII of "mktbmigr"). Every marketbus process uses the same key for the same database.
 */
export const MIGRATION_LOCK_KEY = '7884523538733426546';

/** The candle table all SQL adapters read and write. */
export const CANDLES_TABLE = 'canonical_candles_1m';

/**
 * Prices and volumes are `double precision`: the values are JS numbers (IEEE 754 binary64) and float8
 * is exactly that type, so every value round-trips bit for bit (written as JS's shortest round-trip
 * text, read back with extra_float_digits >= 1, which prints the shortest exact text). `numeric` would
 * store the decimal text exactly too, but comes back from node-pg as a string, is larger and slower,
 * and buys nothing when the producer is already a binary double.
 *
 * `instrument_key` uses the "C" collation: byte order, so `ORDER BY` matches JS's default sort of
 * (ASCII) keys whatever the database's locale, and the primary-key index compares faster.
 */
const MIGRATION_0001 = `
CREATE TABLE ${CANDLES_TABLE} (
  instrument_key text COLLATE "C" NOT NULL,
  ts_open timestamptz NOT NULL,
  ts_close timestamptz NOT NULL,
  market_id bigint NOT NULL,
  symbol text NOT NULL,
  open double precision NOT NULL,
  high double precision NOT NULL,
  low double precision NOT NULL,
  close double precision NOT NULL,
  volume_base double precision NOT NULL,
  volume_quote double precision,
  source text NOT NULL CHECK (source IN ('ws', 'rest', 'sim', 'replay')),
  ingested_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (instrument_key, ts_open),
  CHECK (ts_close = ts_open + interval '1 minute')
)`;

/** Every migration, in order. The context is the executor of the migrating transaction. */
/** Identity (seed 004) and strategies: the relational side of the API and the runner. */
const MIGRATION_0002 = [
  `CREATE TABLE identity_users (
    id text PRIMARY KEY,
    telegram_id bigint UNIQUE,
    username text,
    first_name text,
    last_name text,
    photo_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE TABLE identity_telegram_channels (
    user_id text NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    chat_id bigint NOT NULL,
    is_confirmed boolean NOT NULL DEFAULT false,
    confirmed_at timestamptz,
    PRIMARY KEY (user_id, chat_id)
  )`,
  `CREATE TABLE strategies (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    name text NOT NULL,
    spec jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE INDEX strategies_user ON strategies (user_id, created_at)`,
  `CREATE TABLE strategy_runs (
    id text PRIMARY KEY,
    strategy_id text NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    instrument_key text NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'stopped', 'failed')),
    started_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz,
    error text
  )`,
  `CREATE INDEX strategy_runs_active ON strategy_runs (status, instrument_key)`,
];

/**
 * Backtests (issue 7): one row per backtest of a stored strategy over a stored candle range, its
 * job status and progress, and its result (trades, equity curve, PnL, drawdown, win rate) as JSON.
 * The range columns are `from_ts` / `to_ts` (`from` and `to` are reserved words).
 */
const MIGRATION_0003 = [
  `CREATE TABLE backtests (
    id text PRIMARY KEY,
    strategy_id text NOT NULL REFERENCES strategies (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    progress double precision NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    from_ts timestamptz NOT NULL,
    to_ts timestamptz NOT NULL,
    result jsonb,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false,
    correlation_id text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    CHECK (from_ts < to_ts)
  )`,
  `CREATE INDEX backtests_strategy ON backtests (strategy_id, created_at)`,
  `CREATE INDEX backtests_user ON backtests (user_id, created_at)`,
];

export const MIGRATIONS: ReadonlyArray<RunnableMigration<SqlExecutor>> = [
  {
    name: '0001_candles_1m',
    up: async ({ context }) => {
      await context.query(MIGRATION_0001);
    },
  },
  {
    name: '0002_identity_and_strategies',
    up: async ({ context }) => {
      for (const statement of MIGRATION_0002) await context.query(statement);
    },
  },
  {
    name: '0003_backtests',
    up: async ({ context }) => {
      for (const statement of MIGRATION_0003) await context.query(statement);
    },
  },
];

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

/**
 * Apply pending migrations under the advisory lock, in one transaction. Returns the names applied by
 * this call (empty when the database was already up to date). Safe to run from several processes.
 */
export async function runMigrations(db: SqlDatabase, logger: Logger = silentLogger): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    await tx.query(CREATE_MIGRATIONS_TABLE);
    const umzug = new Umzug<SqlExecutor>({
      migrations: [...MIGRATIONS],
      context: tx,
      storage: migrationTableStorage(),
      logger: {
        info: (m) => logger.info(m, 'migration'),
        warn: (m) => logger.warn(m, 'migration'),
        error: (m) => logger.error(m, 'migration'),
        debug: (m) => logger.debug(m, 'migration'),
      },
    });
    const known = new Set(MIGRATIONS.map((m) => m.name));
    const unknown = (await migrationTableStorage().executed({ context: tx })).filter((n) => !known.has(n));
    if (unknown.length > 0) {
      logger.warn(
        { unknown },
        'the database has migrations this build does not know (a newer marketbus ran)',
      );
    }
    const applied = await umzug.up();
    return applied.map((m) => m.name);
  });
}
