/**
 * Which Redis a command talks to: `--redis URL`, else `REDIS_URL`, else the config's `redis`
 * section, else the embedded server a running `marketbus up` started (its URL is in
 * `<data_dir>/redis.url`), else redis://127.0.0.1:6379. `REDIS_CLUSTER=true` makes a URL from the
 * flag or the environment a Redis Cluster seed (the config says `cluster: true`).
 */
import { withDefaults } from '../util/defaults.js';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  closeRedis,
  clusterOptionsFromEnv,
  createRedisClient,
  passwordFromEnv,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import { loadRedisCode } from './redis-code.js';
import { Counter, type Registry } from 'prom-client';
import { RedisServer } from '../bus/redis-server.js';
import { backoffDelay } from '../util/backoff.js';
import { MarketbusError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { sleep } from '../util/sleep.js';
import { disposable } from './stack.js';
import type { RedisSection } from '../config/redis.js';

export interface RedisTarget {
  readonly options: RedisConnectionOptions;
  /** Where the target came from, for messages. */
  readonly origin: 'flag' | 'env' | 'config' | 'embedded' | 'default';
}

export function redisOptionsFromSection(s: RedisSection): RedisConnectionOptions {
  const password = passwordFromEnv(s.password_env, 'redis.password_env');
  return {
    ...(s.url ? { url: s.url } : { host: s.host, port: s.port, db: s.db, tls: s.tls }),
    username: s.username || undefined,
    password,
    connectTimeoutMs: s.connect_timeout_s * 1000,
    commandTimeoutMs: s.socket_timeout_s * 1000,
    ...(s.cluster ? { cluster: true, clusterNodes: s.cluster_nodes } : {}),
    ...(s.wait_replicas > 0 ? { waitReplicas: s.wait_replicas } : {}),
  };
}

export function resolveRedisTarget(opts: {
  flag?: string | undefined;
  section?: RedisSection | undefined;
  dataDir: string;
  env?: NodeJS.ProcessEnv;
}): RedisTarget {
  const env = opts.env ?? process.env;
  if (opts.flag) return { options: { url: opts.flag, ...clusterOptionsFromEnv(env) }, origin: 'flag' };
  if (env['REDIS_URL'])
    return { options: { url: env['REDIS_URL'], ...clusterOptionsFromEnv(env) }, origin: 'env' };
  if (opts.section) return { options: redisOptionsFromSection(opts.section), origin: 'config' };
  const embedded = embeddedUrl(opts.dataDir);
  if (embedded) return { options: { url: embedded }, origin: 'embedded' };
  return { options: { url: 'redis://127.0.0.1:6379' }, origin: 'default' };
}

/** True when nothing names a Redis, so `marketbus up` should start its own. */
export function wantsEmbeddedRedis(
  flag: string | undefined,
  section: RedisSection | undefined,
  env = process.env,
): boolean {
  return !flag && !env['REDIS_URL'] && !section;
}

function urlFile(dataDir: string): string {
  return join(resolve(dataDir), 'redis.url');
}

/**
 * The embedded server's password: made once (32 random bytes, hex) in `<data_dir>/redis/password`
 * with mode 0600 and reused at every start, so clients holding the URL keep working across restarts.
 */
function embeddedPassword(file: string): string {
  if (!existsSync(file))
    writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return readFileSync(file, 'utf8').trim();
}

function embeddedUrl(dataDir: string): string | undefined {
  const f = urlFile(dataDir);
  if (!existsSync(f)) return undefined;
  const url = readFileSync(f, 'utf8').trim();
  return url.startsWith('redis://') ? url : undefined;
}

export const EMBEDDED_REDIS_RESTARTS = 'marketbus_embedded_redis_restarts_total';

/** Options of the embedded redis-server of `marketbus up` and its supervisor. */
export interface EmbeddedRedisOptions {
  /** Embedded state directory (`data_dir`): the AOF, pid file and log are under `<dataDir>/redis`. */
  readonly dataDir: string;
  /** Where the supervisor logs starts, deaths and restarts. */
  readonly log: Logger;
  /**
   * Registry that gets the `marketbus_embedded_redis_restarts_total` counter.
   * @defaultValue none (restarts are only logged)
   */
  readonly registry?: Registry;
  /**
   * Restarts allowed within `restartWindowMs`; one more death in the window gives up (`failed`).
   * @defaultValue 5
   */
  readonly maxRestarts?: number | undefined;
  /**
   * The sliding window over which deaths are counted, ms.
   * @defaultValue 60000
   */
  readonly restartWindowMs?: number | undefined;
  /**
   * Delay before the first restart in a window, ms; it doubles for each further death in the window.
   * @defaultValue 200
   */
  readonly restartBackoffMs?: number | undefined;
  /**
   * Upper bound of the restart delay, ms.
   * @defaultValue 5000
   */
  readonly restartBackoffMaxMs?: number | undefined;
  /**
   * The redis-server executable.
   * @defaultValue the `redis-server` found on PATH
   */
  readonly binary?: string;
  /**
   * `maxmemory` of the server, in redis.conf units (`512mb`, `2gb`, bytes). At the limit writes fail
   * (`noeviction`: evicting stream entries would lose data) and the feed stops, so the
   * `RedisMemoryNearLimit` alert (deploy/prometheus/alerts.yml) fires at 80 % before it.
   * @defaultValue `512mb`
   */
  readonly maxmemory?: string | undefined;
}

/** The defaults of {@link EmbeddedRedisOptions}, applied by `startEmbeddedRedis`. */
export const EMBEDDED_REDIS_DEFAULTS = Object.freeze({
  maxRestarts: 5,
  restartWindowMs: 60_000,
  restartBackoffMs: 200,
  restartBackoffMaxMs: 5000,
  maxmemory: '512mb',
} satisfies Partial<EmbeddedRedisOptions>);

/** A running embedded redis-server; disposing it stops the supervisor, then the server. */
export interface EmbeddedRedis extends AsyncDisposable {
  /** The URL without the password (banners, logs). */
  readonly url: string;
  /** The URL with the password (clients). */
  readonly authUrl: string;
  /** The file holding the password (mode 0600, created once, kept across restarts). */
  readonly passwordFile: string;
  /** Fixed for the life of the supervisor: restarts reuse it, so clients reconnect to the same URL. */
  readonly port: number;
  /** Data directory (AOF, `redis.pid`, `redis.log`). */
  readonly dir: string;
  /** The current redis-server's pid; undefined while it is down between a death and its restart. */
  readonly pid: number | undefined;
  /** Restarts done so far. */
  readonly restarts: number;
  /**
   * Resolves with an EMBEDDED_REDIS_FAILED error when the server died more than `maxRestarts` times
   * within `restartWindowMs` and the supervisor gave up; stays pending otherwise. Never rejects.
   */
  readonly failed: Promise<MarketbusError>;
  /** Same as `[Symbol.asyncDispose]()`. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start the embedded redis-server with its data (AOF) under `<dataDir>/redis`, publish its URL in
 * `<dataDir>/redis.url` for other `marketbus` commands, and supervise it: when it dies it is started
 * again on the same port from its AOF after a backoff, logged and counted, so clients reconnect by
 * themselves. Closing removes the URL file and stops the server. Idempotent close.
 */
export async function startEmbeddedRedis(opts: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const o = withDefaults(EMBEDDED_REDIS_DEFAULTS, opts);
  const { log } = o;
  const maxRestarts = o.maxRestarts;
  const windowMs = o.restartWindowMs;
  const backoff = { baseMs: o.restartBackoffMs, maxMs: o.restartBackoffMaxMs };
  const dir = join(resolve(o.dataDir), 'redis');
  mkdirSync(dir, { recursive: true });
  const passwordFile = join(dir, 'password');
  const server = await RedisServer.start({
    dir,
    persistence: 'aof',
    binary: o.binary || undefined,
    password: embeddedPassword(passwordFile),
    // fsync before each reply: a server killed hard must not lose entries the feed saw acknowledged
    // (it does not publish them again), or a restart would leave gaps in the candle streams.
    extraArgs: ['--appendfsync', 'always', '--maxmemory', o.maxmemory, '--maxmemory-policy', 'noeviction'],
  });
  // The functions come back from the AOF after a restart; BullMQ's scripts (the script cache) do not.
  // A server that dies again while its code loads must not hold the supervisor (it would never see
  // that death): the load gives up when the server exits, and its connection does not retry forever.
  const loadCode = async (): Promise<void> => {
    const c = createRedisClient({
      url: server.authUrl,
      clientName: 'marketbus-up-loader',
      initialConnectAttempts: 3,
    });
    const died = server.exited.then(() => {
      throw new MarketbusError('EMBEDDED_REDIS_FAILED', 'the embedded redis-server died while loading');
    });
    died.catch(() => undefined);
    try {
      await Promise.race([c.connect().then(() => loadRedisCode(c)), died]);
    } finally {
      await closeRedis(c, server.running ? 2000 : 0);
    }
  };
  await loadCode();
  // Other marketbus commands find the server here; the URL holds the password, so 0600.
  writeFileSync(urlFile(o.dataDir), `${server.authUrl}\n`, { mode: 0o600 });
  chmodSync(urlFile(o.dataDir), 0o600);
  log.info({ url: server.url, dir, pid: server.pid }, 'embedded redis-server started');
  const known = o.registry?.getSingleMetric(EMBEDDED_REDIS_RESTARTS);
  const counter =
    known instanceof Counter
      ? known
      : o.registry
        ? new Counter({
            name: EMBEDDED_REDIS_RESTARTS,
            help: 'Times the embedded redis-server of marketbus up died and was started again',
            registers: [o.registry],
          })
        : undefined;
  const stopping = new AbortController();
  let restarts = 0;
  let giveUp: (e: MarketbusError) => void = () => undefined;
  const failed = new Promise<MarketbusError>((r) => (giveUp = r));
  const supervise = async (): Promise<void> => {
    const deaths: number[] = [];
    for (;;) {
      await server.exited;
      if (stopping.signal.aborted) return;
      const now = Date.now();
      deaths.push(now);
      while ((deaths[0] ?? now) <= now - windowMs) deaths.shift();
      if (deaths.length > maxRestarts) {
        const err = new MarketbusError(
          'EMBEDDED_REDIS_FAILED',
          `the embedded redis-server on port ${server.port} died ${deaths.length} times within ` +
            `${windowMs / 1000} s (at most ${maxRestarts} restarts allowed); see ${join(dir, 'redis.log')}`,
        );
        log.error(
          { port: server.port, deaths: deaths.length, windowMs },
          'embedded redis-server keeps dying',
        );
        giveUp(err);
        return;
      }
      const delayMs = backoffDelay(backoff, deaths.length);
      log.warn(
        { port: server.port, delayMs, deaths: deaths.length },
        'embedded redis-server died; restarting',
      );
      await sleep(delayMs, stopping.signal);
      if (stopping.signal.aborted) return;
      try {
        await server.restart();
        restarts += 1;
        counter?.inc();
        log.warn({ port: server.port, pid: server.pid, restarts }, 'embedded redis-server restarted');
        await loadCode().catch((err: unknown) =>
          log.warn({ port: server.port, err: errorMessage(err) }, 'reloading BullMQ scripts failed'),
        );
      } catch (err) {
        // Its exit is counted as one more death on the next turn.
        log.warn({ port: server.port, err: errorMessage(err) }, 'embedded redis-server restart failed');
      }
      if (stopping.signal.aborted) {
        await server.stop();
        return;
      }
    }
  };
  const supervising = supervise();
  const close = disposable(async () => {
    stopping.abort();
    rmSync(urlFile(o.dataDir), { force: true });
    await server.stop();
    await supervising;
    log.info('embedded redis-server stopped');
  });
  return {
    url: server.url,
    authUrl: server.authUrl,
    passwordFile,
    port: server.port,
    dir,
    get pid() {
      return server.running ? server.pid : undefined;
    },
    get restarts() {
      return restarts;
    },
    failed,
    close: close.close,
    [Symbol.asyncDispose]: close.close,
  };
}
