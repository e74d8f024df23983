/**
 * Identity: sign-in with the Telegram Login Widget (no passwords of our own).
 *
 * - `POST /auth/telegram/login` (JSON payload of the widget, under the Origin check of every POST):
 *   verify, create or update the user, start a session (cookie). 400 for a malformed payload, 401 for a
 *   bad hash, a stale / future `auth_date` or a payload used before, 429 past the sessions of a user,
 *   503 when no bot token is configured. There is no GET sign-in: a link or an image on another site
 *   cannot sign a browser into someone else's account (login CSRF).
 * - `GET /auth/dev?token=<one-time token>` (only with development sign-in on, ../auth/dev-login.ts):
 *   a session of the `local` user and 303 to `/`; 401 for a wrong or used token, 404 when off.
 * - `GET /auth/current-user`: `{ user_id, telegram_id, username, first_name, last_name, photo_url,
 *   chat_confirmed, dev_login }`, or 401.
 * - `POST /auth/logout`: ends the session, clears the cookie. `POST /auth/logout-all` (signed in): ends
 *   every session of the user, this one included; answers `{ ok, ended }`.
 * - `POST /auth/telegram/link` (signed in): a one-time token and the deep link
 *   `https://t.me/<bot>?start=<token>` that confirms the chat binding (see `telegram-webhook.ts`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LOCAL_USER_ID } from '../auth/dev-login.js';
import { confirmedChat, ensureUser, getUser, upsertTelegramUser, type User } from '../auth/identity-store.js';
import { useLoginOnce } from '../auth/login-once.js';
import { telegramLoginFields, verifyTelegramLogin } from '../auth/telegram-login.js';
import type { ApiContext } from '../context.js';
import { ApiError, notFound, unauthorized } from '../http-errors.js';

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
    const fields = telegramLoginFields(input);
    const maxAgeS = ctx.settings.authMaxAgeS;
    const id = verifyTelegramLogin(fields, token, { maxAgeS, skewS: ctx.settings.authSkewS });
    await useLoginOnce(ctx.redis, fields, id.authDate + maxAgeS - Date.now() / 1000);
    const user = await upsertTelegramUser(ctx.db, {
      telegramId: id.telegramId,
      username: id.username,
      firstName: id.firstName,
      lastName: id.lastName,
      photoUrl: id.photoUrl,
    });
    await ctx.auth.signIn(req, reply, user.id);
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

  app.get('/auth/dev', async (req, reply) => {
    const link = ctx.devLogin;
    if (link === null) throw notFound();
    const given = (req.query as Record<string, unknown>)['token'];
    if (typeof given !== 'string' || !link.consume(given))
      throw unauthorized(
        'this development sign-in link is wrong, used or expired: restart to print a new one',
      );
    const user = await ensureUser(ctx.db, LOCAL_USER_ID, 'local');
    await ctx.auth.signIn(req, reply, user.id, true);
    ctx.log.info({ userId: user.id }, 'signed in with the development sign-in link');
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

  app.post('/auth/logout-all', async (req, reply) => {
    const who = await ctx.auth.require(req);
    const ended = await ctx.auth.sessions.destroyAll(who.id);
    ctx.auth.clearCookie(reply);
    ctx.log.info({ userId: who.id, ended }, 'signed out everywhere');
    return { ok: true, ended };
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
