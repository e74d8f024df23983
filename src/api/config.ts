/**
 * Settings of the API server, from the environment. Production (`NODE_ENV=production`) refuses to start
 * without `TELEGRAM_BOT_TOKEN` and `SESSION_SECRET` (a ConfigError naming the key); in development a
 * missing `SESSION_SECRET` is replaced by a random one per process (sessions then end at a restart).
 *
 * | variable                     | meaning                                                               |
 * | ---------------------------- | --------------------------------------------------------------------- |
 * | `NODE_ENV`                   | `production` turns on the checks above and Secure cookies             |
 * | `TELEGRAM_BOT_TOKEN`         | verifies Login Widget payloads; also disables dev login               |
 * | `TELEGRAM_BOT_USERNAME`      | the bot of the deep link `https://t.me/<bot>?start=<token>`           |
 * | `TELEGRAM_WEBHOOK_SECRET`    | `X-Telegram-Bot-Api-Secret-Token` of `/telegram/webhook` (else off)   |
 * | `TELEGRAM_API_ROOT`          | Bot API base for `getMe` when no username is set (local servers)      |
 * | `SESSION_SECRET`             | signs the session cookie; at least 32 characters in production        |
 * | `TELEGRAM_AUTH_MAX_AGE_S`    | oldest accepted `auth_date`, seconds (default 600)                    |
 * | `SESSION_TTL_S`              | session lifetime, seconds (default 30 days)                           |
 * | `MARKETBUS_ADMIN_TELEGRAM_IDS` | Telegram ids (comma-separated) who see the whole bus (default none) |
 * | `API_REQUEST_TIMEOUT_MS`     | time to receive a whole request, ms (default 30000; then 408)         |
 * | `API_CONNECTION_TIMEOUT_MS`  | a socket idle this long is closed, ms (default 120000)                |
 * | `API_KEEP_ALIVE_TIMEOUT_MS`  | idle keep-alive connections closed after, ms (default 72000)          |
 * | `API_MAX_REQUESTS_PER_SOCKET`| requests per keep-alive connection, 0 = no limit (default 0)          |
 * | `API_MAX_HEADER_BYTES`       | largest request head, bytes (default 16384; more is 431)              |
 * | `API_MAX_PARAM_LENGTH`       | longest path parameter, characters (default 100)                      |
 * | `API_MAX_CONNECTIONS`        | open connections accepted, HTTP and WebSocket (default 4096)          |
 * | `API_STREAMS_CACHE_MS`       | one bus scan serves `/api/v1/streams` this long, ms (default 5000)    |
 * | `LIVE_*`                     | the live relay's caps and rates (`live/settings.ts`)                  |
 *
 * The server limits and admin ids are read by src/api/server-settings.ts.
 *
 * Sign-in and session settings (idle expiry, sessions per user, development sign-in) are read by
 * `authSettingsFromEnv` (./auth/settings.ts, with its own table). The webhook secret is at least 32
 * characters in production.
 *
 * Rate limits, quotas, page sizes and `TRUST_PROXY`: the table of `limits/settings.ts`.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../util/errors.js';
import { authSettingsFromEnv, type AuthSettings } from './auth/settings.js';
import { nonEmpty, positiveInt } from './env.js';
import { liveSettingsFromEnv, type LiveSettings } from './live/settings.js';
import {
  adminTelegramIdsFromEnv,
  serverLimitsFromEnv,
  type ResolvedServerLimits,
} from './server-settings.js';
import { limitSettingsFromEnv, type LimitSettings } from './limits/settings.js';

export interface ApiSettings extends AuthSettings {
  readonly production: boolean;
  readonly botToken: string | undefined;
  readonly botUsername: string | undefined;
  readonly webhookSecret: string | undefined;
  readonly telegramApiRoot: string | undefined;
  readonly sessionSecret: string;
  /** True when `sessionSecret` was made up for this process (development only). */
  readonly sessionSecretGenerated: boolean;
  /** Oldest `auth_date` accepted, seconds. */
  readonly authMaxAgeS: number;
  /** How far in the future `auth_date` may be (clock skew), seconds. */
  readonly authSkewS: number;
  readonly sessionTtlS: number;
  /** Lifetime of a one-time chat-link token, seconds. */
  readonly linkTtlS: number;
  /** Timeouts and size limits of the HTTP server. */
  readonly server: ResolvedServerLimits;
  /** Telegram user ids of the admins (the whole bus in `/api/v1/streams`, `/readyz` details). */
  readonly adminTelegramIds: readonly number[];
  /** The live relay's caps and rates (`LIVE_*`). */
  readonly live: LiveSettings;
  /** Rate limits, quotas and page sizes (`limits/settings.ts`). */
  readonly limits: LimitSettings;
}

export const DEFAULT_AUTH_MAX_AGE_S = 600;
export const DEFAULT_SESSION_TTL_S = 30 * 86_400;
export const DEFAULT_LINK_TTL_S = 600;
export const AUTH_SKEW_S = 60;
const MIN_PRODUCTION_SECRET = 32;
const WEBHOOK_SECRET_RE = /^[A-Za-z0-9_-]{1,256}$/;
const BOT_USERNAME_RE = /^[A-Za-z][A-Za-z0-9_]{3,31}$/;

/** Read and check the settings; throws ConfigError naming the first bad or missing key. */
export function apiSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ApiSettings {
  const production = env['NODE_ENV'] === 'production';
  const botToken = nonEmpty(env, 'TELEGRAM_BOT_TOKEN');
  let sessionSecret = nonEmpty(env, 'SESSION_SECRET');
  if (production) {
    if (!botToken)
      throw new ConfigError('TELEGRAM_BOT_TOKEN', 'is required in production (NODE_ENV=production)');
    if (!sessionSecret)
      throw new ConfigError('SESSION_SECRET', 'is required in production (NODE_ENV=production)');
    if (sessionSecret.length < MIN_PRODUCTION_SECRET)
      throw new ConfigError('SESSION_SECRET', `must be at least ${MIN_PRODUCTION_SECRET} characters`);
  }
  const generated = sessionSecret === undefined;
  sessionSecret ??= randomBytes(32).toString('base64url');
  const webhookSecret = nonEmpty(env, 'TELEGRAM_WEBHOOK_SECRET');
  if (webhookSecret !== undefined && !WEBHOOK_SECRET_RE.test(webhookSecret))
    throw new ConfigError('TELEGRAM_WEBHOOK_SECRET', 'expected 1-256 characters of A-Z, a-z, 0-9, _ and -');
  if (production && webhookSecret !== undefined && webhookSecret.length < MIN_PRODUCTION_SECRET)
    throw new ConfigError('TELEGRAM_WEBHOOK_SECRET', `must be at least ${MIN_PRODUCTION_SECRET} characters`);
  const botUsername = nonEmpty(env, 'TELEGRAM_BOT_USERNAME')?.replace(/^@/, '');
  if (botUsername !== undefined && !BOT_USERNAME_RE.test(botUsername))
    throw new ConfigError('TELEGRAM_BOT_USERNAME', `not a Telegram bot username: ${botUsername}`);
  return {
    production,
    botToken,
    botUsername,
    webhookSecret,
    telegramApiRoot: nonEmpty(env, 'TELEGRAM_API_ROOT'),
    sessionSecret,
    sessionSecretGenerated: generated,
    authMaxAgeS: positiveInt(env, 'TELEGRAM_AUTH_MAX_AGE_S', DEFAULT_AUTH_MAX_AGE_S),
    authSkewS: AUTH_SKEW_S,
    sessionTtlS: positiveInt(env, 'SESSION_TTL_S', DEFAULT_SESSION_TTL_S),
    linkTtlS: DEFAULT_LINK_TTL_S,
    ...authSettingsFromEnv(env, production),
    server: serverLimitsFromEnv(env),
    adminTelegramIds: adminTelegramIdsFromEnv(env),
    live: liveSettingsFromEnv((key, fallback) => positiveInt(env, key, fallback)),
    limits: limitSettingsFromEnv(env),
  };
}

/** True for the addresses and names of this machine's loopback interface. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || h === '::ffff:127.0.0.1' || /^127(\.\d{1,3}){3}$/.test(h);
}
