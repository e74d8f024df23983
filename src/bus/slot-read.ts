/**
 * Reading many streams on a Redis Cluster. One XREAD/XREADGROUP may only name keys of one hash slot,
 * and a blocked read holds its node connection, so on a cluster the streams are split by slot and read
 * without BLOCK, one command per slot (node-redis pipelines them per node), with a short idle wait
 * between empty rounds (so there is never a blocked read to interrupt either). On one server all
 * streams stay in one blocking read.
 */
import calculateSlot from 'cluster-key-slot';
import { Backoff } from './backoff.js';
import { isCluster, type RedisClient } from './connection.js';

/** Idle wait between empty polling rounds on a cluster: from 5 ms, doubling, up to this, ms. */
export const CLUSTER_POLL_MAX_MS = 100;

export interface ReadPlan {
  /** One multi-key read per group. */
  readonly groups: readonly (readonly string[])[];
  /** True on a cluster: read without BLOCK and wait `clusterIdleBackoff()` after an empty round. */
  readonly poll: boolean;
}

/** How to read `keys`: one blocking read on one server; a non-blocking read per hash slot on a cluster. */
export function readPlan(client: RedisClient, keys: readonly string[]): ReadPlan {
  return isCluster(client) ? { groups: slotGroups(keys), poll: true } : { groups: [keys], poll: false };
}

/** The keys split into groups that share a hash slot. */
export function slotGroups(keys: readonly string[]): (readonly string[])[] {
  const bySlot = new Map<number, string[]>();
  for (const k of keys) {
    const slot = calculateSlot(k);
    const g = bySlot.get(slot);
    if (g) g.push(k);
    else bySlot.set(slot, [k]);
  }
  return [...bySlot.values()];
}

/** The wait after a polling round that brought nothing; reset after one that brought entries. */
export function clusterIdleBackoff(): Backoff {
  return new Backoff({ baseMs: 5, maxMs: CLUSTER_POLL_MAX_MS, jitter: 0 });
}

/**
 * The keys grouped by the server that holds them: one group on one server; per master on a cluster
 * (as the client knows the slots now). A command sent with a group's first key reaches that server.
 */
export function nodeGroups(client: RedisClient, keys: readonly string[]): (readonly string[])[] {
  if (!isCluster(client)) return keys.length > 0 ? [keys] : [];
  const byNode = new Map<string, string[]>();
  for (const k of keys) {
    const node = client.slots[calculateSlot(k)]?.master.address ?? '?';
    const g = byNode.get(node);
    if (g) g.push(k);
    else byNode.set(node, [k]);
  }
  return [...byNode.values()];
}
