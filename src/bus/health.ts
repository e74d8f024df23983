/**
 * Health of streams and their consumer groups: length, first/last ID, lag, pending, oldest pending
 * idle time, consumers and their idle time, dead letters. Built on the defensive reply parsers.
 */
import { isCluster, type RedisClient } from './connection.js';
import {
  parseConsumers,
  parseEntries,
  parseGroups,
  parsePendingEntries,
  parseStreamInfo,
  type ConsumerInfo,
  type GroupInfo,
} from './replies.js';
import { sendCommand } from './raw-command.js';
import { canHaveDeadLetters, deadLetterStream } from './keys.js';
import type { StreamDescription, StreamPolicy } from './stream-policy.js';

export interface GroupHealth extends GroupInfo {
  /** True when Redis could not tell the lag and it was counted with XRANGE (capped at `LAG_COUNT_CAP`). */
  readonly lagCounted: boolean;
  readonly oldestPendingId: string | null;
  readonly oldestPendingIdleMs: number | null;
  readonly consumerList: readonly ConsumerInfo[];
}

export interface StreamHealth {
  readonly stream: string;
  readonly length: number;
  readonly firstEntryId: string | null;
  readonly lastEntryId: string | null;
  readonly lastGeneratedId: string;
  readonly entriesAdded: number | null;
  /** The policy's description of the stream (`StreamPolicy.describe`), null when it has none. */
  readonly catalog: StreamDescription | null;
  /** Length of the stream's dead-letter stream (0 when there is none); null for a dead-letter stream itself. */
  readonly deadLetters: number | null;
  readonly groups: readonly GroupHealth[];
}

/** Largest lag counted entry by entry when Redis reports none. */
export const LAG_COUNT_CAP = 10_000;

export interface InspectOptions {
  /**
   * Describes the stream (`StreamHealth.catalog`).
   * @defaultValue none: `catalog` is null
   */
  readonly policy?: StreamPolicy;
}

/** Health of one stream, or null when the key does not exist or is not a stream. */
export async function inspectStream(
  client: RedisClient,
  stream: string,
  o: InspectOptions = {},
): Promise<StreamHealth | null> {
  const type = await client.type(stream);
  if (type !== 'stream') return null;
  const info = parseStreamInfo(await sendCommand(client, ['XINFO', 'STREAM', stream]));
  const groupInfos = parseGroups(await sendCommand(client, ['XINFO', 'GROUPS', stream]));
  const groupHealth = await Promise.all(
    groupInfos.map((g) => inspectGroup(client, stream, g, info.lastEntryId)),
  );
  const deadLetters = canHaveDeadLetters(stream) ? await client.xLen(deadLetterStream(stream)) : null;
  return {
    stream,
    length: info.length,
    firstEntryId: info.firstEntryId,
    lastEntryId: info.lastEntryId,
    lastGeneratedId: info.lastGeneratedId,
    entriesAdded: info.entriesAdded,
    catalog: o.policy?.describe?.(stream) ?? null,
    deadLetters,
    groups: groupHealth,
  };
}

async function inspectGroup(
  client: RedisClient,
  stream: string,
  g: GroupInfo,
  lastEntryId: string | null,
): Promise<GroupHealth> {
  const [consumersRaw, oldestRaw] = await Promise.all([
    sendCommand(client, ['XINFO', 'CONSUMERS', stream, g.name]),
    g.pending > 0 ? sendCommand(client, ['XPENDING', stream, g.name, '-', '+', '1']) : Promise.resolve([]),
  ]);
  const oldest = parsePendingEntries(oldestRaw)[0];
  let lag = g.lag;
  let lagCounted = false;
  if (lag === null && lastEntryId !== null) {
    // Redis 7 reports a NULL lag once entries were deleted past the group's position: count instead.
    const after = parseEntries(
      await sendCommand(client, [
        'XRANGE',
        stream,
        `(${g.lastDeliveredId}`,
        '+',
        'COUNT',
        String(LAG_COUNT_CAP),
      ]),
    );
    lag = after.entries.length;
    lagCounted = true;
  }
  return {
    ...g,
    lag,
    lagCounted,
    oldestPendingId: oldest?.id ?? null,
    oldestPendingIdleMs: oldest?.idleMs ?? null,
    consumerList: parseConsumers(consumersRaw),
  };
}

/** Names of the stream keys matching a glob pattern (SCAN with TYPE stream), sorted. */
export async function scanStreams(client: RedisClient, pattern = '*'): Promise<string[]> {
  const out = new Set<string>();
  // A cluster's keyspace is split over its masters: scan each of them.
  const nodes = isCluster(client)
    ? await Promise.all(client.masters.map((m) => client.nodeClient(m)))
    : [client];
  for (const node of nodes) {
    for await (const keys of node.scanIterator({ MATCH: pattern, TYPE: 'stream', COUNT: 1000 })) {
      for (const k of keys) out.add(k);
    }
  }
  return [...out].sort();
}
