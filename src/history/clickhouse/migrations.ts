/**
 * Schema migrations of the ClickHouse history store, run with umzug and recorded in ClickHouse itself
 * (`<database>.marketbus_migrations`).
 *
 * ClickHouse has no transactions and no locks, so "safe to run from several processes" rests on two
 * rules: every migration is idempotent (`IF NOT EXISTS` / `IF EXISTS`), and the log is append-only
 * (a row per apply or revert; the latest row of a name decides). Two processes migrating at once may
 * both run a migration and both log it; that changes nothing.
 *
 * The SQL must run on Debian's clickhouse-server 18.16 and on current releases: no DateTime64,
 * LowCardinality, codecs or TTL; MergeTree in the "new" syntax (PARTITION BY / ORDER BY), which
 * 18.16 has.
 */
import { Umzug, type RunnableMigration, type UmzugStorage } from 'umzug';
import type { ClickHouseHttp } from './http.js';
import { sqlInt, sqlString } from './sql.js';
import { nextVersion } from './version.js';
import { UnexpectedReplyError } from '../../bus/errors.js';

export const CANDLES_TABLE = 'canonical_candles_1m';
export const MIGRATIONS_TABLE = 'marketbus_migrations';

export interface MigrationContext {
  readonly http: ClickHouseHttp;
  /** The database, already back-quoted (sql.ts `sqlIdentifier`). */
  readonly db: string;
}

/**
 * `canonical_candles_1m`, one row per (instrument_key, ts_open) after merges:
 * - times are UInt64 epoch milliseconds (UTC): exact for any ms value, where 18.16's DateTime has
 *   seconds only and DateTime64 does not exist;
 * - prices and volumes are Float64 (inserted as binary, so exactly the JS numbers);
 * - `source` is the Candle origin (`ws`, `rest`, `sim`, `replay`), a String so a new origin needs no
 *   migration;
 * - `version` orders writes of the same key (version.ts); ReplacingMergeTree keeps the highest, and
 *   reads use FINAL so duplicates not yet merged never show;
 * - partitions are calendar months of ts_open in UTC.
 */
const CREATE_CANDLES = (db: string): string => `
CREATE TABLE IF NOT EXISTS ${db}.${CANDLES_TABLE} (
  instrument_key String,
  ts_open UInt64,
  ts_close UInt64,
  symbol String,
  market_id Int64,
  open Float64,
  high Float64,
  low Float64,
  close Float64,
  volume_base Float64,
  volume_quote Nullable(Float64),
  source String,
  version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(toDateTime(intDiv(ts_open, 1000), 'UTC'))
ORDER BY (instrument_key, ts_open)`;

export const MIGRATIONS: ReadonlyArray<RunnableMigration<MigrationContext>> = [
  {
    name: '0001_canonical_candles_1m',
    up: async ({ context }) => context.http.command(CREATE_CANDLES(context.db)),
    down: async ({ context }) => context.http.command(`DROP TABLE IF EXISTS ${context.db}.${CANDLES_TABLE}`),
  },
];

/** The database and the migration log table (before umzug can ask what ran). */
async function prepare({ http, db }: MigrationContext): Promise<void> {
  await http.command(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await http.command(
    `CREATE TABLE IF NOT EXISTS ${db}.${MIGRATIONS_TABLE} (
      name String,
      applied UInt8,
      version UInt64,
      at DateTime DEFAULT now()
    )
    ENGINE = MergeTree
    ORDER BY (name, version)`,
  );
}

function storage(ctx: MigrationContext): UmzugStorage<MigrationContext> {
  const log = (name: string, applied: 0 | 1): Promise<void> =>
    ctx.http.command(
      `INSERT INTO ${ctx.db}.${MIGRATIONS_TABLE} (name, applied, version) VALUES ` +
        `(${sqlString(name)}, ${sqlInt(applied)}, ${sqlInt(nextVersion())})`,
    );
  return {
    logMigration: ({ name }) => log(name, 1),
    unlogMigration: ({ name }) => log(name, 0),
    executed: async () => {
      const rows = await ctx.http.rows(
        `SELECT name FROM ${ctx.db}.${MIGRATIONS_TABLE} GROUP BY name ` +
          `HAVING argMax(applied, version) = 1 ORDER BY name`,
      );
      return rows.map((r) => {
        const name = (r as { name?: unknown }).name;
        if (typeof name !== 'string') throw new UnexpectedReplyError(`${MIGRATIONS_TABLE} row`, r);
        return name;
      });
    },
  };
}

/** Create the database if needed and apply pending migrations; returns the names applied now. */
export async function migrate(ctx: MigrationContext): Promise<string[]> {
  await prepare(ctx);
  const umzug = new Umzug<MigrationContext>({
    migrations: [...MIGRATIONS],
    context: ctx,
    storage: storage(ctx),
    logger: undefined,
  });
  const applied = await umzug.up();
  return applied.map((m) => m.name);
}
