import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import {
  closeRedis,
  connectRedis,
  type RedisClient,
  type RedisConnectionOptions,
} from '../../src/bus/connection.js';
import { RedisServer, type RedisServerOptions } from '../../src/bus/redis-server.js';
import { LocalRedisCluster } from './redis-cluster.js';

/**
 * `MARKETBUS_TEST_REDIS=cluster` (the vitest project `cluster`) runs the same suites against a local
 * Redis Cluster of three masters with a replica each: `startRedis()` then starts one per call.
 */
export const TEST_TOPOLOGY: 'standalone' | 'cluster' =
  process.env['MARKETBUS_TEST_REDIS'] === 'cluster' ? 'cluster' : 'standalone';

/** What a test talks to: one redis-server, or a whole local cluster with the same kill/restart. */
export type TestRedis = RedisServer | LocalRedisCluster;

const servers: TestRedis[] = [];
const clients: RedisClient[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => closeRedis(c)));
  await Promise.allSettled(servers.map((s) => s.dispose()));
});

/**
 * A private redis-server for this test file (a private cluster under `MARKETBUS_TEST_REDIS=cluster`),
 * stopped and removed after it.
 */
export async function startRedis(
  opts: Pick<RedisServerOptions, 'persistence' | 'extraArgs'> = {},
): Promise<TestRedis> {
  const s = TEST_TOPOLOGY === 'cluster' ? await LocalRedisCluster.start(opts) : await RedisServer.start(opts);
  servers.push(s);
  return s;
}

/** How marketbus components reach the test's Redis (the cluster's seeds and `cluster: true` on a cluster). */
export function redisOptions(server: TestRedis): RedisConnectionOptions {
  return server instanceof LocalRedisCluster ? server.options : { url: server.url };
}

/** Environment for a child process (`marketbus` CLI) to reach the test's Redis. */
export function redisEnv(server: TestRedis): Record<string, string> {
  return server instanceof LocalRedisCluster
    ? { REDIS_URL: server.url, REDIS_CLUSTER: 'true' }
    : { REDIS_URL: server.url };
}

/** A connected client, closed after the file. */
export async function connect(
  server: TestRedis,
  opts: { commandTimeoutMs?: number } = {},
): Promise<RedisClient> {
  const c = await connectRedis({
    ...redisOptions(server),
    reconnectBaseMs: 50,
    reconnectMaxMs: 500,
    ...opts,
  });
  clients.push(c);
  return c;
}

/** A random name part, so tests never share streams or groups. */
export function uniq(prefix = 't'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/** Poll until `check` returns true; fail with `label` after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  label: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
