/**
 * A Telegram login payload works once. Its hash (SHA-256 of the data-check-string and the payload's
 * own `hash`) is kept in Redis with SET NX until the payload would be refused as stale anyway, so a
 * captured payload (browser history, a proxy log) cannot start a second session.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from '../../bus/connection.js';
import { withTimeout } from '../http-errors.js';
import { dataCheckString, TelegramLoginError } from './telegram-login.js';

const REDIS_WAIT_MS = 2000;

/** `api:login-seen:<sha256 hex>` of a payload. */
export function loginSeenKey(fields: Readonly<Record<string, string>>): string {
  const h = createHash('sha256')
    .update(dataCheckString(fields), 'utf8')
    .update('\n', 'utf8')
    .update(fields['hash'] ?? '', 'utf8');
  return `api:login-seen:${h.digest('hex')}`;
}

/**
 * Record a verified payload as used; throws TelegramLoginError `replayed` when it was used before.
 * `keepS`: seconds until its `auth_date` passes the accepted age.
 */
export async function useLoginOnce(
  redis: RedisClient,
  fields: Readonly<Record<string, string>>,
  keepS: number,
): Promise<void> {
  const first = await withTimeout(
    redis.set(loginSeenKey(fields), '1', {
      expiration: { type: 'EX', value: Math.max(1, Math.ceil(keepS)) },
      condition: 'NX',
    }),
    REDIS_WAIT_MS,
    'login replay check',
  );
  if (first === null)
    throw new TelegramLoginError('replayed', 'this login payload was used already: sign in again');
}
