/** The few Redis calls around the timed sections (never inside them). */
import type { RedisClient } from '../../bus/connection.js';

export async function redisVersionOf(client: RedisClient): Promise<string> {
  const info = await client.info('server');
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
}

/**
 * DEL, not UNLINK: UNLINK frees big streams in a background thread, which on a 2-core machine would
 * compete with the next timed run.
 */
export async function deleteStreams(client: RedisClient, names: readonly string[]): Promise<void> {
  await client.del([...names]);
}

export async function totalLength(client: RedisClient, names: readonly string[]): Promise<number> {
  const lengths = await Promise.all(names.map((s) => client.xLen(s)));
  return lengths.reduce((a, b) => a + b, 0);
}

export async function totalPending(
  client: RedisClient,
  names: readonly string[],
  group: string,
): Promise<number> {
  const replies = await Promise.all(names.map((s) => client.xPending(s, group)));
  return replies.reduce((a, r) => a + r.pending, 0);
}

export async function createGroups(
  client: RedisClient,
  names: readonly string[],
  group: string,
  startId: string,
): Promise<void> {
  await Promise.all(names.map((s) => client.xGroupCreate(s, group, startId, { MKSTREAM: true })));
}
