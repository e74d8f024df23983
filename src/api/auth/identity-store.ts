/** Identity tables: users from Telegram login, and confirmed Telegram chat bindings. */
import { randomUUID } from 'node:crypto';
import type { SqlExecutor, SqlRow } from '../../sql/executor.js';

export interface User {
  readonly id: string;
  readonly telegramId: number | null;
  readonly username: string | null;
  readonly firstName: string | null;
  readonly lastName: string | null;
  readonly photoUrl: string | null;
}

const s = (r: SqlRow, k: string): string | null => {
  const v = r[k];
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : null;
};

function userRow(r: SqlRow): User {
  return {
    id: String(r['id']),
    telegramId: r['telegram_id'] === null || r['telegram_id'] === undefined ? null : Number(r['telegram_id']),
    username: s(r, 'username'),
    firstName: s(r, 'first_name'),
    lastName: s(r, 'last_name'),
    photoUrl: s(r, 'photo_url'),
  };
}

/** Create or update the user of a Telegram account; returns it with its stable id. */
export async function upsertTelegramUser(
  db: SqlExecutor,
  t: {
    telegramId: number;
    username?: string | null;
    firstName?: string | null;
    lastName?: string | null;
    photoUrl?: string | null;
  },
): Promise<User> {
  const { rows } = await db.query(
    `INSERT INTO identity_users (id, telegram_id, username, first_name, last_name, photo_url) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (telegram_id) DO UPDATE SET username = EXCLUDED.username, first_name = EXCLUDED.first_name,
       last_name = EXCLUDED.last_name, photo_url = EXCLUDED.photo_url, updated_at = now()
     RETURNING *`,
    [
      randomUUID(),
      t.telegramId,
      t.username ?? null,
      t.firstName ?? null,
      t.lastName ?? null,
      t.photoUrl ?? null,
    ],
  );
  return userRow(rows[0] as SqlRow);
}

/** A user without Telegram (the local development user). */
export async function ensureUser(db: SqlExecutor, id: string, username: string): Promise<User> {
  const { rows } = await db.query(
    `INSERT INTO identity_users (id, username) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET updated_at = now() RETURNING *`,
    [id, username],
  );
  return userRow(rows[0] as SqlRow);
}

export async function getUser(db: SqlExecutor, id: string): Promise<User | null> {
  const { rows } = await db.query('SELECT * FROM identity_users WHERE id = $1', [id]);
  return rows[0] ? userRow(rows[0]) : null;
}

/** Bind a chat to a user and confirm it (the bot received the user's one-time deep link). */
export async function confirmChat(db: SqlExecutor, userId: string, chatId: number): Promise<void> {
  await db.query(
    `INSERT INTO identity_telegram_channels (user_id, chat_id, is_confirmed, confirmed_at) VALUES ($1, $2, true, now())
     ON CONFLICT (user_id, chat_id) DO UPDATE SET is_confirmed = true, confirmed_at = now()`,
    [userId, chatId],
  );
}

/** The user's confirmed chat, or null (notices go only to confirmed bindings). */
export async function confirmedChat(db: SqlExecutor, userId: string): Promise<number | null> {
  const { rows } = await db.query(
    'SELECT chat_id FROM identity_telegram_channels WHERE user_id = $1 AND is_confirmed ORDER BY confirmed_at DESC NULLS LAST LIMIT 1',
    [userId],
  );
  return rows[0] ? Number(rows[0]['chat_id']) : null;
}
