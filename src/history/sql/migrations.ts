/**
 * The candle table's migrations, registered with the SQL migrator (`sql/migrator.ts`). A candle
 * store opened alone runs these; the whole relational database runs them with the other modules'
 * (`app/open-db.ts`).
 */
import { sqlMigration, type SqlMigration } from '../../sql/migrator.js';

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

/** Released names: never rename or edit (existing databases record them). */
export const CANDLE_MIGRATIONS: readonly SqlMigration[] = [sqlMigration('0001_candles_1m', [MIGRATION_0001])];
