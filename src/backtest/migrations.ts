/**
 * The backtest table, registered with the SQL migrator (`sql/migrator.ts`) by `app/open-db.ts`.
 */
import { sqlMigration, type SqlMigration } from '../sql/migrator.js';

/**
 * One row per backtest of a stored strategy over a stored candle range, its job status and
 * progress, and its result (trades, equity curve, PnL, drawdown, win rate) as JSON. The range
 * columns are `from_ts` / `to_ts` (`from` and `to` are reserved words). `strategy_id` references
 * `strategies`, so this runs after `0002_identity_and_strategies`.
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

/** Released names: never rename or edit (existing databases record them). */
export const BACKTEST_MIGRATIONS: readonly SqlMigration[] = [sqlMigration('0003_backtests', MIGRATION_0003)];
