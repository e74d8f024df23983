/**
 * `POST /telegram/webhook`: Bot API updates (set the bot's webhook with `secret_token` =
 * `TELEGRAM_WEBHOOK_SECRET`; without that setting the route answers 404). The
 * `X-Telegram-Bot-Api-Secret-Token` header must match (constant-time), else 401.
 *
 * A message `/start <token>` (what the deep link of `POST /auth/telegram/link` makes Telegram send)
 * confirms the chat it came from for the token's user and uses the token up. When the user signed in
 * with Telegram, the message must come from that same Telegram account (a forwarded link does not bind
 * someone else's chat). The answer carries a `sendMessage` for the chat (Telegram's "reply to the
 * webhook" form). Every other update is acknowledged with 200 and ignored, so Telegram does not retry.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { confirmChat, getUser } from '../auth/identity-store.js';
import type { ApiContext } from '../context.js';
import { ApiError, notFound } from '../http-errors.js';

const Update = z.looseObject({
  update_id: z.number(),
  message: z
    .looseObject({
      text: z.string().optional(),
      chat: z.looseObject({ id: z.number().int() }),
      from: z.looseObject({ id: z.number().int() }).optional(),
    })
    .optional(),
});

const START_RE = /^\/start(?:@[A-Za-z0-9_]+)?\s+(\S+)\s*$/;

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function telegramWebhookRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/telegram/webhook', async (req) => {
    const secret = ctx.settings.webhookSecret;
    if (!secret) throw notFound();
    const given = req.headers['x-telegram-bot-api-secret-token'];
    if (typeof given !== 'string' || !sameSecret(given, secret))
      throw new ApiError('UNAUTHORIZED', 'bad X-Telegram-Bot-Api-Secret-Token');
    const update = Update.safeParse(req.body);
    if (!update.success) return { ok: true };
    const msg = update.data.message;
    const m = msg?.text === undefined ? null : START_RE.exec(msg.text);
    if (!msg || !m?.[1]) return { ok: true };
    const chatId = msg.chat.id;
    const say = (text: string) => ({ method: 'sendMessage', chat_id: chatId, text });
    const token = m[1];
    const userId = await ctx.links.peek(token);
    if (userId === null) return say('This link is invalid or has expired. Ask for a new one in marketbus.');
    const user = await getUser(ctx.db, userId);
    if (!user) return say('This link is invalid or has expired. Ask for a new one in marketbus.');
    if (user.telegramId !== null && msg.from?.id !== user.telegramId) {
      ctx.log.warn({ userId, chatId }, 'chat link refused: sent from another Telegram account');
      return say('This link belongs to another Telegram account.');
    }
    if ((await ctx.links.consume(token)) !== userId)
      return say('This link is invalid or has expired. Ask for a new one in marketbus.');
    await confirmChat(ctx.db, userId, chatId);
    ctx.log.info({ userId, chatId }, 'telegram chat binding confirmed');
    return say('Done: marketbus strategy notices will come to this chat.');
  });
}
