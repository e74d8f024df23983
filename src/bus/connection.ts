import { createClient } from 'redis';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { backoffDelay } from './backoff.js';

/** The client type marketbus uses everywhere (node-redis 5, RESP2 by default, default modules). */
export type RedisClient = ReturnType<typeof createRedisClient>;

/** How to reach Redis. `url` wins over host/port/db/password when both are given. */
export interface RedisConnectionOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://` for TLS. */
  readonly url?: string;
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** Default 6379. */
  readonly port?: number;
  /** Database index. Default 0. */
  readonly db?: number;
  readonly username?: string;
  /** The password itself (already read from the environment variable that the config names). */
  readonly password?: string;
  /** Use TLS with host/port (a `rediss://` URL implies it). Default false. */
  readonly tls?: boolean;
  /** TCP (and TLS) connect timeout, ms. Default 2000. */
  readonly connectTimeoutMs?: number;
  /**
   * Longest wait for replies, ms, for components that bound their waits: the producer (per batch) and
   * the consumer's blocking read (on top of its block time). Not applied per command by the client,
   * which would cost a timer per command. Default 2000.
   */
  readonly commandTimeoutMs?: number;
  /** First reconnect delay, ms; doubles up to `reconnectMaxMs`, with jitter. Default 100. */
  readonly reconnectBaseMs?: number;
  /** Largest reconnect delay, ms. Default 5000. */
  readonly reconnectMaxMs?: number;
  /**
   * Most commands queued while disconnected or waiting for replies; past it commands fail at once
   * instead of growing memory. Default 100000.
   */
  readonly maxQueuedCommands?: number;
  /**
   * Attempts to connect before `connect()` gives up when the server has never answered (a one-shot
   * command should fail fast). Once connected, reconnects never give up. Default: never give up.
   */
  readonly initialConnectAttempts?: number;
  /** CLIENT SETNAME, shown by CLIENT LIST. */
  readonly clientName?: string;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Connection options from `REDIS_URL` (when set) on top of the given ones. */
export function redisOptionsFromEnv(
  base: RedisConnectionOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): RedisConnectionOptions {
  const url = env.REDIS_URL?.trim();
  return url ? { ...base, url } : base;
}

/** Read a password from the environment variable a config names (`password_env`); the key names the setting. */
export function passwordFromEnv(
  varName: string | undefined,
  key: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (!varName) return undefined;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(varName))
    throw new ConfigError(key, `not a valid environment variable name: ${varName}`);
  const v = env[varName];
  return v === undefined || v === '' ? undefined : v;
}

export function validateRedisUrl(url: string, key = 'redis.url'): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(key, `not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(key, `scheme must be redis:// or rediss://, got ${parsed.protocol}//`);
  }
  return parsed;
}

/** A human-readable target with the password removed, for logs. */
export function describeRedis(opts: RedisConnectionOptions): string {
  if (opts.url) {
    const u = validateRedisUrl(opts.url);
    u.password = u.password ? '***' : '';
    return u.toString();
  }
  return `${opts.tls ? 'rediss' : 'redis'}://${opts.host ?? '127.0.0.1'}:${opts.port ?? 6379}/${opts.db ?? 0}`;
}

/**
 * Create (not connect) a node-redis client with marketbus's defaults: bounded command queue, command
 * timeout, reconnect with jittered exponential backoff, and errors routed to the logger (an unhandled
 * 'error' event would otherwise crash the process).
 */
export function createRedisClient(opts: RedisConnectionOptions, log?: Logger) {
  if (opts.url) validateRedisUrl(opts.url);
  const base = opts.reconnectBaseMs ?? 100;
  const max = opts.reconnectMaxMs ?? 5000;
  let everReady = false;
  const client = createClient({
    ...(opts.url ? { url: opts.url } : {}),
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...(opts.db !== undefined && !opts.url ? { database: opts.db } : {}),
    ...(opts.clientName ? { name: opts.clientName } : {}),
    socket: {
      ...(opts.url ? {} : { host: opts.host ?? '127.0.0.1', port: opts.port ?? 6379 }),
      ...(opts.tls && !opts.url ? { tls: true as const } : {}),
      connectTimeout: opts.connectTimeoutMs ?? 2000,
      reconnectStrategy: (retries: number, cause: Error) => {
        if (
          !everReady &&
          opts.initialConnectAttempts !== undefined &&
          retries + 1 >= opts.initialConnectAttempts
        )
          return cause;
        return backoffDelay({ baseMs: base, maxMs: max, jitter: 0.5 }, retries + 1);
      },
    },
    commandsQueueMaxLength: opts.maxQueuedCommands ?? 100_000,
  });
  client.on('ready', () => (everReady = true));
  let lastLogged = 0;
  client.on('error', (err: unknown) => {
    // Reconnect attempts raise one error each; log at most one a second.
    const now = Date.now();
    if (now - lastLogged < 1000) return;
    lastLogged = now;
    log?.warn(
      { err: err instanceof Error ? err.message : String(err), redis: describeRedis(opts) },
      'redis connection error',
    );
  });
  return client;
}

/** Create and connect; a server that is down at start is retried by the reconnect strategy. */
export async function connectRedis(opts: RedisConnectionOptions, log?: Logger): Promise<RedisClient> {
  const client = createRedisClient(opts, log);
  await client.connect();
  return client;
}

/** Close a client: QUIT when connected (pending replies drain), destroy otherwise. Idempotent. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (!client.isOpen) return;
  try {
    if (client.isReady) await client.close();
    else client.destroy();
  } catch {
    client.destroy();
  }
}
