/**
 * Sign-in settings from the environment (src/api/auth/settings.ts, src/api/config.ts): defaults,
 * development sign-in never in production, the production length of the webhook secret.
 */
import { describe, expect, it } from 'vitest';
import { AUTH_SETTINGS_DEFAULTS } from '../../src/api/auth/settings.js';
import { apiSettingsFromEnv } from '../../src/api/config.js';
import { ConfigError } from '../../src/util/errors.js';

const PROD = { NODE_ENV: 'production', TELEGRAM_BOT_TOKEN: '1:x', SESSION_SECRET: 's'.repeat(40) };

/** The key of the ConfigError `env` raises. */
function badKey(env: NodeJS.ProcessEnv): string {
  try {
    apiSettingsFromEnv(env);
  } catch (e) {
    if (e instanceof ConfigError) return e.key;
    throw e;
  }
  throw new Error('no ConfigError');
}

describe('sign-in settings', () => {
  it('defaults: 7-day idle limit, 20 sessions a user, login payloads for 600 s, no development sign-in', () => {
    const s = apiSettingsFromEnv({});
    expect(s).toMatchObject({ ...AUTH_SETTINGS_DEFAULTS, authMaxAgeS: 600 });
    expect(s.sessionIdleS).toBe(7 * 86_400);
    expect(s.devLogin).toBe(false);
  });

  it('reads the variables and names a bad one', () => {
    const s = apiSettingsFromEnv({
      SESSION_IDLE_S: '60',
      MAX_SESSIONS_PER_USER: '3',
      MARKETBUS_DEV_LOGIN: '1',
      MARKETBUS_DEV_LOGIN_TTL_S: '30',
    });
    expect(s).toMatchObject({ sessionIdleS: 60, maxSessionsPerUser: 3, devLogin: true, devLoginTtlS: 30 });
    expect(badKey({ SESSION_IDLE_S: '0' })).toBe('SESSION_IDLE_S');
    expect(badKey({ MAX_SESSIONS_PER_USER: 'many' })).toBe('MAX_SESSIONS_PER_USER');
    expect(badKey({ MARKETBUS_DEV_LOGIN: 'maybe' })).toBe('MARKETBUS_DEV_LOGIN');
  });

  it('development sign-in is refused in production', () => {
    expect(badKey({ ...PROD, MARKETBUS_DEV_LOGIN: 'true' })).toBe('MARKETBUS_DEV_LOGIN');
    expect(apiSettingsFromEnv({ ...PROD, MARKETBUS_DEV_LOGIN: '0' }).devLogin).toBe(false);
  });

  it('the webhook secret is at least 32 characters in production (any length in development)', () => {
    expect(badKey({ ...PROD, TELEGRAM_WEBHOOK_SECRET: 'x' })).toBe('TELEGRAM_WEBHOOK_SECRET');
    expect(badKey({ ...PROD, TELEGRAM_WEBHOOK_SECRET: 'a'.repeat(31) })).toBe('TELEGRAM_WEBHOOK_SECRET');
    expect(
      apiSettingsFromEnv({ ...PROD, TELEGRAM_WEBHOOK_SECRET: 'a'.repeat(32) }).webhookSecret,
    ).toHaveLength(32);
    expect(apiSettingsFromEnv({ TELEGRAM_WEBHOOK_SECRET: 'x' }).webhookSecret).toBe('x');
  });
});
