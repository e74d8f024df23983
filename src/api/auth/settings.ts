/**
 * Settings of sign-in and sessions, from the environment (read by `apiSettingsFromEnv` in ../config.ts;
 * a ConfigError names the bad key). docs/security.md, "Sign-in and sessions", explains each.
 *
 * | variable                     | meaning                                                                  |
 * | ---------------------------- | ------------------------------------------------------------------------ |
 * | `SESSION_IDLE_S`             | a session unused this long ends, seconds (default 7 days)                |
 * | `MAX_SESSIONS_PER_USER`      | live sessions of one user; a sign-in past it is 429 (default 20)         |
 * | `MARKETBUS_DEV_LOGIN`        | `1`/`true`: development sign-in by a one-time link (never in production) |
 * | `MARKETBUS_DEV_LOGIN_TTL_S`  | how long the printed one-time link works, seconds (default 900)          |
 */
import { ConfigError } from '../../util/errors.js';
import { positiveInt } from '../env.js';

export interface AuthSettings {
  /**
   * A session not used for this long ends, seconds (each use restarts the count, up to the lifetime).
   * @defaultValue 604_800 (7 days)
   */
  readonly sessionIdleS: number;
  /**
   * Live sessions of one user at most; one more sign-in is answered 429 with `Retry-After`.
   * @defaultValue 20
   */
  readonly maxSessionsPerUser: number;
  /**
   * Development sign-in (one-time link printed at start) asked for by the environment.
   * @defaultValue false
   */
  readonly devLogin: boolean;
  /**
   * Lifetime of the one-time development sign-in link, seconds.
   * @defaultValue 900
   */
  readonly devLoginTtlS: number;
}

/** The defaults of {@link AuthSettings}. */
export const AUTH_SETTINGS_DEFAULTS = Object.freeze({
  sessionIdleS: 604_800,
  maxSessionsPerUser: 20,
  devLogin: false,
  devLoginTtlS: 900,
} satisfies AuthSettings);

/** `1`/`true`/`yes` on, `0`/`false`/`no`/unset off; anything else a ConfigError. */
function flag(env: NodeJS.ProcessEnv, key: string): boolean {
  const raw = env[key]?.trim().toLowerCase() ?? '';
  if (raw === '' || raw === '0' || raw === 'false' || raw === 'no') return false;
  if (raw === '1' || raw === 'true' || raw === 'yes') return true;
  throw new ConfigError(key, `expected 1 or 0, got ${raw}`);
}

/** Refuses development sign-in in production, however it was asked for (`key` names how). */
export function checkDevLogin(production: boolean, key: string): void {
  if (production)
    throw new ConfigError(key, 'development sign-in is refused in production (NODE_ENV=production)');
}

export function authSettingsFromEnv(env: NodeJS.ProcessEnv, production: boolean): AuthSettings {
  const d = AUTH_SETTINGS_DEFAULTS;
  const devLogin = flag(env, 'MARKETBUS_DEV_LOGIN');
  if (devLogin) checkDevLogin(production, 'MARKETBUS_DEV_LOGIN');
  return {
    sessionIdleS: positiveInt(env, 'SESSION_IDLE_S', d.sessionIdleS),
    maxSessionsPerUser: positiveInt(env, 'MAX_SESSIONS_PER_USER', d.maxSessionsPerUser),
    devLogin,
    devLoginTtlS: positiveInt(env, 'MARKETBUS_DEV_LOGIN_TTL_S', d.devLoginTtlS),
  };
}
