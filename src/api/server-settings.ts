/**
 * How much of the HTTP server one client may hold, and who sees everything: the server's timeouts,
 * header and connection limits, the cache behind `/api/v1/streams`, and the admin Telegram ids. Read
 * from the environment by `apiSettingsFromEnv` (src/api/config.ts, whose header lists the variables);
 * docs/security.md says what each one stops.
 */
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { ConfigError } from '../util/errors.js';

/** Limits of the HTTP server (each a setting; the environment variable is in src/api/config.ts). */
export interface ServerLimits {
  /**
   * Time to receive one whole request, head and body, ms (`API_REQUEST_TIMEOUT_MS`): a slower client
   * (a body trickled byte by byte, or never finished) gets 408 and its socket is closed. Checked every
   * `requestTimeoutMs / 4` ms (at most every second), so a request is dropped within 1.25 times this.
   * @defaultValue 30000
   */
  readonly requestTimeoutMs?: number;
  /**
   * A socket with no traffic this long is closed, ms (`API_CONNECTION_TIMEOUT_MS`; Fastify's
   * `connectionTimeout`). WebSocket connections have their own ping/pong timeout instead.
   * @defaultValue 120000
   */
  readonly connectionTimeoutMs?: number;
  /**
   * An idle keep-alive connection is closed after this long, ms (`API_KEEP_ALIVE_TIMEOUT_MS`; longer
   * than the usual proxy's idle timeout, so the proxy closes first).
   * @defaultValue 72000
   */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Requests one keep-alive connection may carry before the server closes it; 0 = no limit
   * (`API_MAX_REQUESTS_PER_SOCKET`).
   * @defaultValue 0
   */
  readonly maxRequestsPerSocket?: number;
  /**
   * Largest request head (request line and headers), bytes (`API_MAX_HEADER_BYTES`): more is answered
   * 431 by Node before any route runs.
   * @defaultValue 16384
   */
  readonly maxHeaderBytes?: number;
  /**
   * Longest path parameter (a strategy or backtest id), characters (`API_MAX_PARAM_LENGTH`): longer is 404.
   * @defaultValue 100
   */
  readonly maxParamLength?: number;
  /**
   * Open connections, HTTP and WebSocket together, the server accepts (`API_MAX_CONNECTIONS`); a
   * connection beyond it is closed at once.
   * @defaultValue 4096
   */
  readonly maxConnections?: number;
  /**
   * How long one scan of the bus behind `/api/v1/streams` answers every user, ms
   * (`API_STREAMS_CACHE_MS`; 0 = scan at every call).
   * @defaultValue 5000
   */
  readonly streamsCacheMs?: number;
}

/** The defaults of {@link ServerLimits}, applied by `serverLimits`. */
export const SERVER_LIMITS_DEFAULTS = Object.freeze({
  requestTimeoutMs: 30_000,
  connectionTimeoutMs: 120_000,
  keepAliveTimeoutMs: 72_000,
  maxRequestsPerSocket: 0,
  maxHeaderBytes: 16_384,
  maxParamLength: 100,
  maxConnections: 4096,
  streamsCacheMs: 5000,
} satisfies ServerLimits);

export type ResolvedServerLimits = WithDefaults<ServerLimits, typeof SERVER_LIMITS_DEFAULTS>;

/** `limits` over the defaults. */
export function serverLimits(limits: ServerLimits = {}): ResolvedServerLimits {
  return withDefaults(SERVER_LIMITS_DEFAULTS, limits);
}

const ENV: Readonly<Record<keyof ServerLimits, { key: string; min: number }>> = {
  requestTimeoutMs: { key: 'API_REQUEST_TIMEOUT_MS', min: 1 },
  connectionTimeoutMs: { key: 'API_CONNECTION_TIMEOUT_MS', min: 1 },
  keepAliveTimeoutMs: { key: 'API_KEEP_ALIVE_TIMEOUT_MS', min: 1 },
  maxRequestsPerSocket: { key: 'API_MAX_REQUESTS_PER_SOCKET', min: 0 },
  maxHeaderBytes: { key: 'API_MAX_HEADER_BYTES', min: 1024 },
  maxParamLength: { key: 'API_MAX_PARAM_LENGTH', min: 1 },
  maxConnections: { key: 'API_MAX_CONNECTIONS', min: 1 },
  streamsCacheMs: { key: 'API_STREAMS_CACHE_MS', min: 0 },
};

/** An integer setting of at least `min`; throws ConfigError naming `key`. */
function intSetting(env: NodeJS.ProcessEnv, key: string, min: number): number | undefined {
  const raw = env[key]?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min)
    throw new ConfigError(key, `expected an integer of at least ${min}, got ${raw}`);
  return n;
}

/** The server limits of the environment (unset variables keep their defaults). */
export function serverLimitsFromEnv(env: NodeJS.ProcessEnv): ResolvedServerLimits {
  const given: Record<string, number | undefined> = {};
  for (const [field, { key, min }] of Object.entries(ENV)) given[field] = intSetting(env, key, min);
  return serverLimits(given);
}

/**
 * `MARKETBUS_ADMIN_TELEGRAM_IDS`: comma-separated Telegram user ids who see the whole bus in
 * `/api/v1/streams` and the details of `/readyz`; none by default.
 */
export function adminTelegramIdsFromEnv(env: NodeJS.ProcessEnv): readonly number[] {
  const key = 'MARKETBUS_ADMIN_TELEGRAM_IDS';
  const raw = env[key]?.trim();
  if (!raw) return [];
  return raw.split(',').map((part) => {
    const n = Number(part.trim());
    if (!/^\d{1,16}$/.test(part.trim()) || !Number.isSafeInteger(n) || n <= 0)
      throw new ConfigError(key, `expected comma-separated Telegram user ids, got ${JSON.stringify(part)}`);
    return n;
  });
}
