/**
 * The admin role: a user signed in with Telegram whose Telegram id is in `MARKETBUS_ADMIN_TELEGRAM_IDS`
 * (src/api/server-settings.ts). An admin sees the whole bus in `/api/v1/streams` and the details of
 * `/readyz`; everyone else sees the shared streams and their own, and only the readiness status.
 */
import type { FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.js';
import { getUser } from './identity-store.js';

/**
 * True when the request's user is an admin. False for no session, the development user, or when the
 * session or the user cannot be looked up (Redis or the database down): an unknown caller is no admin.
 */
export async function isAdmin(ctx: ApiContext, req: FastifyRequest): Promise<boolean> {
  const admins = ctx.settings.adminTelegramIds;
  if (admins.length === 0) return false;
  try {
    const who = await ctx.auth.user(req);
    if (!who || who.dev) return false;
    const telegramId = (await getUser(ctx.db, who.id))?.telegramId ?? null;
    return telegramId !== null && admins.includes(telegramId);
  } catch {
    return false;
  }
}
