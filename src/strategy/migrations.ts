/**
 * The strategy tables (stored strategies and their runs), for the SQL migrator (`sql/migrator.ts`).
 * They were released inside `0002_identity_and_strategies` after the identity tables, so that
 * migration is composed of the identity statements and these in `app/open-db.ts`.
 */

/** The strategy part of `0002_identity_and_strategies`, in its released order. Never edit. */
export const STRATEGY_TABLES_0002: readonly string[] = [
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
