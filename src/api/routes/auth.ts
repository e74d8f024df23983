/**
 * Identity: sign-in with the Telegram Login Widget (no passwords of our own).
 *
 * - `POST /auth/telegram/login` (JSON payload of the widget) and `GET /auth/telegram/login?<fields>`
 *   (the widget's `data-auth-url` redirect; answers 303 to `/`): verify, create or update the user, start
 *   a session (cookie). 400 for a malformed payload, 401 for a bad hash or a stale / future `auth_date`,
 *   503 when no bot token is configured.
 * - `GET /auth/current-user`: `{ user_id, telegram_id, username, first_name, last_name, photo_url,
 *   chat_confirmed, dev_login }`, or 401.
 * - `POST /auth/logout`: ends the session, clears the cookie.
 * - `POST /auth/telegram/link` (signed in): a one-time token and the deep link
 *   `https://t.me/<bot>?start=<token>` that confirms the chat binding (see `telegram-webhook.ts`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { confirmedChat, getUser, upsertTelegramUser, type User } from '../auth/identity-store.js';
import { verifyTelegramLogin } from '../auth/telegram-login.js';
import type { ApiContext } from '../context.js';
import { ApiError, unauthorized } from '../http-errors.js';

export function userJson(u: User, extra: { chatConfirmed: boolean; devLogin: boolean }) {
  return {
    user_id: u.id,
    telegram_id: u.telegramId,
    username: u.username,
    first_name: u.firstName,
    last_name: u.lastName,
    photo_url: u.photoUrl,
    chat_confirmed: extra.chatConfirmed,
    dev_login: extra.devLogin,
  };
}

export function authRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const login = async (req: FastifyRequest, reply: FastifyReply, input: unknown): Promise<User> => {
    const token = ctx.settings.botToken;
    if (!token)
      throw new ApiError('LOGIN_NOT_CONFIGURED', 'Telegram login is not configured: set TELEGRAM_BOT_TOKEN');
    // A TelegramLoginError answers 400 (malformed) or 401 with body code `telegram_<problem>`.
    const id = verifyTelegramLogin(input, token, {
      maxAgeS: ctx.settings.authMaxAgeS,
      skewS: ctx.settings.authSkewS,
    });
    const user = await upsertTelegramUser(ctx.db, {
      telegramId: id.telegramId,
      username: id.username,
      firstName: id.firstName,
      lastName: id.lastName,
      photoUrl: id.photoUrl,
    });
    // A new session id at every sign-in (no fixation); the old one, if any, ends.
    const old = ctx.auth.token(req);
    if (old) await ctx.auth.sessions.destroy(old);
    ctx.auth.setCookie(reply, await ctx.auth.sessions.create(user.id));
    ctx.log.info({ userId: user.id, telegramId: user.telegramId }, 'signed in with Telegram');
    return user;
  };

  app.post('/auth/telegram/login', async (req, reply) => {
    const user = await login(req, reply, req.body);
    return userJson(user, {
      chatConfirmed: (await confirmedChat(ctx.db, user.id)) !== null,
      devLogin: false,
    });
  });

  app.get('/auth/telegram/login', async (req, reply) => {
    await login(req, reply, req.query);
    return reply.redirect('/', 303);
  });

  app.get('/auth/current-user', async (req) => {
    const who = await ctx.auth.require(req);
    const user = await getUser(ctx.db, who.id);
    if (!user) throw unauthorized('the session belongs to a user that no longer exists');
    return userJson(user, {
      chatConfirmed: (await confirmedChat(ctx.db, user.id)) !== null,
      devLogin: who.dev,
    });
  });

  app.post('/auth/logout', async (req, reply) => {
    const token = ctx.auth.token(req);
    if (token) await ctx.auth.sessions.destroy(token);
    ctx.auth.clearCookie(reply);
    return { ok: true };
  });

  app.post('/auth/telegram/link', async (req) => {
    const who = await ctx.auth.require(req);
    const bot = await ctx.bot.get();
    if (bot === null)
      throw new ApiError(
        'BOT_NOT_CONFIGURED',
        'no Telegram bot: set TELEGRAM_BOT_TOKEN and TELEGRAM_BOT_USERNAME',
      );
    const token = await ctx.links.create(who.id);
    return {
      token,
      deep_link: `https://t.me/${bot}?start=${token}`,
      bot_username: bot,
      expires_in: ctx.links.ttlS,
    };
  });
}
