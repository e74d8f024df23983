/**
 * Replies written at most once per command. A command is delivered at least once (a responder that
 * died after replying but before its XACK leaves it pending, and another responder reclaims it); the
 * reply must not be. `publishOnce` adds the entry and records `once:{<stream>}:<once id>` = the entry
 * ID in one Redis function (`publish_once`, src/bus/functions.ts), and adds nothing when the record exists. The record shares the stream's hash
 * slot (Cluster) and lives as long as the stream keeps its entries (the catalog retention).
 * `answeredId` lets a responder skip the handler of a command that was already answered.
 */
import { DEFAULT_RETENTION, describeStream } from '../contracts/catalog.js';
import { type Retention } from '../bus/stream-policy.js';
import type { RedisClient } from '../bus/connection.js';
import { callFunction } from '../bus/functions.js';

const DAY_MS = 86_400_000;

/** The record of a once-only entry; the braces keep it in the stream's slot. */
export function onceKey(stream: string, onceId: string): string {
  return `once:{${stream}}:${onceId}`;
}

function retentionOf(stream: string): Retention | null {
  const kind = describeStream(stream)?.kind;
  return kind ? DEFAULT_RETENTION[kind] : null;
}

export interface OnceResult {
  /** False when an entry with this once id had been added before (nothing was added now). */
  readonly added: boolean;
  /** The entry ID (the earlier one when not added). */
  readonly id: string;
}

/** Add `fields` to `stream` unless an entry with `onceId` was added there before (within retention). */
export async function publishOnce(
  redis: RedisClient,
  stream: string,
  onceId: string,
  fields: Readonly<Record<string, string>>,
  now = Date.now(),
): Promise<OnceResult> {
  const r = retentionOf(stream);
  const trim =
    r === null
      ? ['none', '0']
      : r.kind === 'maxlen'
        ? ['maxlen', String(r.maxLen)]
        : ['minid', String(Math.max(0, now - r.maxAgeMs))];
  const ttl = r?.kind === 'maxage' ? r.maxAgeMs : DAY_MS;
  const flat: string[] = [];
  for (const [k, v] of Object.entries(fields)) flat.push(k, v);
  const res = await callFunction(
    redis,
    'publish_once',
    [stream, onceKey(stream, onceId)],
    [String(ttl), ...trim, ...flat],
  );
  const [added, id]: readonly unknown[] = Array.isArray(res) ? (res as unknown[]) : [];
  return { added: Number(added) === 1, id: typeof id === 'string' ? id : '' };
}

/** The entry ID of the once-only entry `onceId` on `stream`, or null when there is none. */
export async function answeredId(redis: RedisClient, stream: string, onceId: string): Promise<string | null> {
  return redis.get(onceKey(stream, onceId));
}
