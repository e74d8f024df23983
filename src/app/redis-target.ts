/**
 * Which Redis a command talks to: `--redis URL`, else `REDIS_URL`, else the config's `redis`
 * section, else the embedded server a running `marketbus up` started (its URL is in
 * `<data_dir>/redis.url`), else redis://127.0.0.1:6379. `REDIS_CLUSTER=true` makes a URL from the
 * flag or the environment a Redis Cluster seed (the config says `cluster: true`).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { clusterOptionsFromEnv, passwordFromEnv, type RedisConnectionOptions } from '../bus/connection.js';
import { RedisServer } from '../bus/redis-server.js';
import type { Logger } from '../util/log.js';
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
    ...(s.username ? { username: s.username } : {}),
    ...(password !== undefined ? { password } : {}),
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
  if (env.REDIS_URL) return { options: { url: env.REDIS_URL, ...clusterOptionsFromEnv(env) }, origin: 'env' };
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
  return !flag && !env.REDIS_URL && !section;
}

function urlFile(dataDir: string): string {
  return join(resolve(dataDir), 'redis.url');
}

function embeddedUrl(dataDir: string): string | undefined {
  const f = urlFile(dataDir);
  if (!existsSync(f)) return undefined;
  const url = readFileSync(f, 'utf8').trim();
  return url.startsWith('redis://') ? url : undefined;
}

/**
 * Start the embedded redis-server with its data (AOF) under `<dataDir>/redis`, and publish its URL in
 * `<dataDir>/redis.url` for other `marketbus` commands. `stop()` removes the URL file. Idempotent stop.
 */
export async function startEmbeddedRedis(
  dataDir: string,
  log: Logger,
): Promise<{ server: RedisServer; stop: () => Promise<void> }> {
  const dir = join(resolve(dataDir), 'redis');
  const server = await RedisServer.start({ dir, persistence: 'aof' });
  writeFileSync(urlFile(dataDir), `${server.url}\n`);
  log.info({ url: server.url, dir, pid: server.pid }, 'embedded redis-server started');
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      rmSync(urlFile(dataDir), { force: true });
      await server.stop();
      log.info('embedded redis-server stopped');
    })();
    return stopped;
  };
  return { server, stop };
}
