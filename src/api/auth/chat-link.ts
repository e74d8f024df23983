/**
 * One-time chat-link tokens (a chat binding is confirmed only through the bot). A signed-in
 * user asks for a token; the deep link `https://t.me/<bot>?start=<token>` opens the bot, Telegram sends
 * `/start <token>` to our webhook, and the chat it came from is bound and confirmed. Redis keeps
 * `api:tglink:<sha256(token)>` -> user id for `ttlS` seconds; consuming is GETDEL, so a token works once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Api } from 'grammy';
import type { RedisClient } from '../../bus/connection.js';
import { errorMessage } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { withTimeout } from '../http-errors.js';

/** Telegram's `start` parameter: 1-64 characters of A-Z, a-z, 0-9, _ and -. Ours are 32. */
export const LINK_TOKEN_RE = /^[A-Za-z0-9_-]{32}$/;
const REDIS_WAIT_MS = 2000;

export function linkKey(token: string): string {
  return `api:tglink:${createHash('sha256').update(token).digest('hex')}`;
}

export class ChatLinks {
  constructor(
    private readonly redis: RedisClient,
    readonly ttlS: number,
  ) {}

  async create(userId: string): Promise<string> {
    const token = randomBytes(24).toString('base64url');
    await withTimeout(
      this.redis.set(linkKey(token), userId, { expiration: { type: 'EX', value: this.ttlS } }),
      REDIS_WAIT_MS,
      'link token create',
    );
    return token;
  }

  /** The user a live token belongs to, without using it up. */
  async peek(token: string): Promise<string | null> {
    if (!LINK_TOKEN_RE.test(token)) return null;
    return withTimeout(this.redis.get(linkKey(token)), REDIS_WAIT_MS, 'link token lookup');
  }

  /** Use the token up; returns its user, or null when it is unknown, expired or already used. */
  async consume(token: string): Promise<string | null> {
    if (!LINK_TOKEN_RE.test(token)) return null;
    return withTimeout(this.redis.getDel(linkKey(token)), REDIS_WAIT_MS, 'link token consume');
  }
}

/** The bot's username: `TELEGRAM_BOT_USERNAME`, else asked once with getMe; null when neither works. */
export class BotUsername {
  private cached: string | undefined;

  constructor(
    private readonly o: {
      readonly username: string | undefined;
      readonly token: string | undefined;
      readonly apiRoot: string | undefined;
      readonly log: Logger;
    },
  ) {
    this.cached = o.username;
  }

  async get(): Promise<string | null> {
    if (this.cached !== undefined) return this.cached;
    if (!this.o.token) return null;
    try {
      const api = new Api(this.o.token, this.o.apiRoot ? { apiRoot: this.o.apiRoot } : undefined);
      const me = await withTimeout(api.getMe(), 5000, 'Telegram getMe');
      this.cached = me.username;
      return me.username;
    } catch (err) {
      this.o.log.warn(
        { err: errorMessage(err) },
        'cannot learn the bot username (set TELEGRAM_BOT_USERNAME)',
      );
      return null;
    }
  }
}
