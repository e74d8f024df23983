/**
 * Reading many streams on a Redis Cluster. One XREAD/XREADGROUP may only name keys of one hash slot,
 * and a blocked read holds its node connection, so on a cluster the streams are split by slot and read
 * without BLOCK, one command per slot (node-redis pipelines them per node), with a short idle wait
 * between empty rounds (so there is never a blocked read to interrupt either). On one server all
 * streams stay in one blocking read.
 */
import calculateSlot from 'cluster-key-slot';
import { Backoff } from '../util/backoff.js';
import { sleep } from '../util/sleep.js';
import { isCluster, type RedisClient } from './connection.js';

/** Idle wait between empty polling rounds on a cluster: from 5 ms, doubling, up to this, ms. */
export const CLUSTER_POLL_MAX_MS = 100;

export interface ReadPlan {
  /** One multi-key read per group. */
  readonly groups: readonly (readonly string[])[];
  /** True on a cluster: read without BLOCK and wait (`IdleWait`) after an empty round. */
  readonly poll: boolean;
}

/** How to read `keys`: one blocking read on one server; a non-blocking read per hash slot on a cluster. */
export function readPlan(client: RedisClient, keys: readonly string[]): ReadPlan {
  return isCluster(client) ? { groups: slotGroups(keys), poll: true } : { groups: [keys], poll: false };
}

/** The keys split into groups that share a hash slot. */
export function slotGroups(keys: readonly string[]): (readonly string[])[] {
  return groupKeys(keys, calculateSlot);
}

function groupKeys(keys: readonly string[], groupOf: (key: string) => number | string): string[][] {
  const groups = new Map<number | string, string[]>();
  for (const k of keys) {
    const g = groups.get(groupOf(k));
    if (g) g.push(k);
    else groups.set(groupOf(k), [k]);
  }
  return [...groups.values()];
}

/** What one round of reads (one per group of a plan) gave. */
export interface ReadRound<T> {
  /** The replies of the reads that succeeded. */
  readonly replies: readonly T[];
  /** The first failed read's error, when one failed (the others' replies are still there). */
  readonly failure: { readonly reason: unknown } | undefined;
}

/** Run one read per group of `plan` at once; a failed read does not lose the others' replies. */
export async function readRound<T>(
  plan: ReadPlan,
  read: (keys: readonly string[]) => Promise<T>,
): Promise<ReadRound<T>> {
  const results = await Promise.allSettled(plan.groups.map(read));
  const replies: T[] = [];
  let failure: { reason: unknown } | undefined;
  for (const r of results) {
    if (r.status === 'fulfilled') replies.push(r.value);
    else failure ??= { reason: r.reason };
  }
  return { replies, failure };
}

/** The idle wait of a polling reader: after an empty round, from 5 ms doubling to CLUSTER_POLL_MAX_MS. */
export class IdleWait {
  private readonly backoff = new Backoff({ baseMs: 5, maxMs: CLUSTER_POLL_MAX_MS, jitter: 0 });

  /** After a round that brought `entries` entries: wait when polling and it brought none. */
  async after(plan: ReadPlan, entries: number, signal: AbortSignal): Promise<void> {
    if (!plan.poll) return;
    if (entries > 0) this.backoff.reset();
    else await sleep(this.backoff.next(), signal);
  }
}

/**
 * The keys grouped by the server that holds them: one group on one server; per master on a cluster
 * (as the client knows the slots now). A command sent with a group's first key reaches that server.
 */
export function nodeGroups(client: RedisClient, keys: readonly string[]): (readonly string[])[] {
  if (!isCluster(client)) return keys.length > 0 ? [keys] : [];
  return groupKeys(keys, (k) => client.slots[calculateSlot(k)]?.master.address ?? '?');
}
