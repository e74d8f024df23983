/**
 * The identity tables (users and their Telegram channels), for the SQL migrator (`sql/migrator.ts`).
 * They were released inside `0002_identity_and_strategies` together with the strategy tables, so
 * that migration is composed of these statements and the strategies' in `app/open-db.ts`.
 */

/** The identity part of `0002_identity_and_strategies`, in its released order. Never edit. */
export const IDENTITY_TABLES_0002: readonly string[] = [
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
];
