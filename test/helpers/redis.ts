import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import { closeRedis, connectRedis, type RedisClient } from '../../src/bus/connection.js';
import { RedisServer, type RedisServerOptions } from '../../src/bus/redis-server.js';

const servers: RedisServer[] = [];
const clients: RedisClient[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => closeRedis(c)));
  await Promise.allSettled(servers.map((s) => s.dispose()));
});

/** A private redis-server for this test file, stopped and removed after it. */
export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const s = await RedisServer.start(opts);
  servers.push(s);
  return s;
}

/** A connected client, closed after the file. */
export async function connect(
  server: RedisServer,
  opts: { commandTimeoutMs?: number } = {},
): Promise<RedisClient> {
  const c = await connectRedis({ url: server.url, reconnectBaseMs: 50, reconnectMaxMs: 500, ...opts });
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
