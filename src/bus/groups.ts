import type { RedisClient } from './connection.js';
import { isBusyGroupReply } from './redis-errors.js';

/**
 * Create a consumer group if it does not exist (XGROUP CREATE ... MKSTREAM). Returns true when it was
 * created, false when it already existed. `startId`: `$` for new entries only, `0` for the whole stream.
 */
export async function ensureGroup(
  client: RedisClient,
  stream: string,
  group: string,
  startId = '$',
): Promise<boolean> {
  try {
    await client.xGroupCreate(stream, group, startId, { MKSTREAM: true });
    return true;
  } catch (err) {
    if (isBusyGroupReply(err)) return false;
    throw err;
  }
}
