/**
 * The Lua marketbus runs on Redis, in one place for the loaders and the services: the `marketbus`
 * functions library (src/bus/functions.ts, every topology) and BullMQ's scripts
 * (src/backtest/bull-scripts.ts, one server only: BullMQ has no cluster support on node-redis).
 * `loadRedisCode` is the privileged step (`marketbus up` on its embedded server and after each of its
 * restarts, `marketbus redis functions load`, `marketbus redis acl --apply`); `ensureRedisCode` is what
 * a service runs at start: load when its connection may, else check and fail with
 * REDIS_CODE_NOT_LOADED naming the step to run.
 */
import { ensureBullScripts, loadBullScripts } from '../backtest/bull-scripts.js';
import { isCluster, type RedisClient } from '../bus/connection.js';
import { ensureFunctions, loadFunctions } from '../bus/functions.js';

/** What `loadRedisCode` loaded. */
export interface LoadedRedisCode {
  /** Masters that got the functions library (1 on a single server). */
  readonly functionNodes: number;
  /** BullMQ scripts loaded (0 on a cluster). */
  readonly bullScripts: number;
}

export async function loadRedisCode(redis: RedisClient): Promise<LoadedRedisCode> {
  const functionNodes = await loadFunctions(redis);
  const bullScripts = isCluster(redis) ? 0 : await loadBullScripts(redis);
  return { functionNodes, bullScripts };
}

/** At a service's start: the functions, and BullMQ's scripts for a service that runs the queue. */
export async function ensureRedisCode(redis: RedisClient, o: { readonly bullmq: boolean }): Promise<void> {
  await ensureFunctions(redis);
  if (o.bullmq && !isCluster(redis)) await ensureBullScripts(redis);
}
