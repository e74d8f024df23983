/**
 * Dead letters: an entry that cannot be processed moves to `dlq:{<stream>}` atomically with its ack
 * (one MULTI; the hash tag keeps both keys in one Cluster slot), carrying where it came from and why.
 * Dead letters can be listed, replayed and purged.
 */
import { withDefaults } from '../util/defaults.js';
import { errorMessage } from '../util/errors.js';
import { DeadLetterReplayRefusedError } from './errors.js';
import type { RedisClient } from './connection.js';
import { parseEntries, type StreamEntry } from './replies.js';
import { sendCommand } from './raw-command.js';
import { deadLetterStream } from './keys.js';
import { DEFAULT_STREAM_POLICY, trimOptions, type StreamPolicy } from './stream-policy.js';

export type DeadLetterReason =
  /** The handler failed `maxDeliveries` times. */
  | 'max-deliveries'
  /** The fields could not be decoded: retrying cannot help. */
  | 'decode'
  /** The entry was trimmed or deleted while it was pending: only its ID is known. */
  | 'deleted-while-pending';

export interface DeadLetter {
  /** ID of the dead letter in the dead-letter stream. */
  readonly dlqId: string;
  readonly stream: string;
  readonly entryId: string;
  readonly group: string;
  readonly consumer: string;
  readonly deliveries: number;
  /** A DeadLetterReason for dead letters written by marketbus. */
  readonly reason: string;
  readonly error: string;
  readonly errorCode: string;
  readonly failedAt: string;
  readonly fields: Readonly<Record<string, string>>;
}

export interface DeadLetterInput {
  readonly stream: string;
  readonly group: string;
  readonly entryId: string;
  readonly consumer: string;
  readonly deliveries: number;
  readonly reason: DeadLetterReason;
  readonly error: unknown;
  readonly fields: Readonly<Record<string, string>> | null;
}

export interface DeadLetterOptions {
  /**
   * Gives the retention of the dead-letter stream (`dlq:{<stream>}`), applied when a dead letter is
   * added.
   * @defaultValue `DEFAULT_STREAM_POLICY` (dead-letter streams kept at `DEAD_LETTER_RETENTION`)
   */
  readonly policy?: StreamPolicy | undefined;
  /**
   * Clock for MINID retention, ms since epoch.
   * @defaultValue `Date.now`
   */
  readonly now?: () => number;
}

/** The defaults of {@link DeadLetterOptions}, applied by `moveToDeadLetter`. */
export const DEAD_LETTER_DEFAULTS = Object.freeze({
  policy: DEFAULT_STREAM_POLICY,
  now: Date.now,
} satisfies Partial<DeadLetterOptions>);

export function encodeDeadLetter(d: DeadLetterInput, now = new Date()): Record<string, string> {
  const code =
    typeof d.error === 'object' && d.error !== null && 'code' in d.error ? String(d.error.code) : '';
  return {
    stream: d.stream,
    entry_id: d.entryId,
    group: d.group,
    consumer: d.consumer,
    deliveries: String(d.deliveries),
    reason: d.reason,
    error: errorMessage(d.error).slice(0, 2000),
    error_code: code,
    failed_at: now.toISOString(),
    fields: JSON.stringify(d.fields ?? {}),
  };
}

export function decodeDeadLetter(e: StreamEntry): DeadLetter {
  const f = e.fields;
  let fields: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(f['fields'] ?? '{}');
    if (parsed && typeof parsed === 'object') fields = parsed as Record<string, string>;
  } catch {
    // keep the dead letter listable even if its copy of the fields is damaged
  }
  return {
    dlqId: e.id,
    stream: f['stream'] ?? '',
    entryId: f['entry_id'] ?? '',
    group: f['group'] ?? '',
    consumer: f['consumer'] ?? '',
    deliveries: Number(f['deliveries'] ?? 0),
    reason: f['reason'] ?? '',
    error: f['error'] ?? '',
    errorCode: f['error_code'] ?? '',
    failedAt: f['failed_at'] ?? '',
    fields,
  };
}

/** Move an entry to its dead-letter stream and acknowledge it, in one MULTI/EXEC. */
export async function moveToDeadLetter(
  client: RedisClient,
  d: DeadLetterInput,
  options: DeadLetterOptions = {},
): Promise<string> {
  const dlq = deadLetterStream(d.stream);
  const o = withDefaults(DEAD_LETTER_DEFAULTS, options);
  const retention = o.policy.retention(dlq);
  const replies = await client
    .multi()
    .xAdd(dlq, '*', encodeDeadLetter(d), trimOptions(retention, o.now()))
    .xAck(d.stream, d.group, d.entryId)
    .exec();
  const id = replies[0];
  return typeof id === 'string' ? id : '';
}

export interface DeadLetterQuery {
  /**
   * Only dead letters of this consumer group.
   * @defaultValue every group
   */
  readonly group?: string | undefined;
  /**
   * Most dead letters returned, entries (replay: `REPLAY_DEFAULTS.count`; purge with a filter: all matching).
   * @defaultValue 100
   */
  readonly count?: number | undefined;
  /**
   * Only these dead-letter IDs.
   * @defaultValue every ID
   */
  readonly ids?: readonly string[] | undefined;
}

/** Dead letters of a stream, oldest first. */
export async function listDeadLetters(
  client: RedisClient,
  stream: string,
  q: DeadLetterQuery = {},
): Promise<DeadLetter[]> {
  const dlq = deadLetterStream(stream);
  const want = q.count ?? 100;
  const out: DeadLetter[] = [];
  let start = '-';
  // Page through the stream so a group filter still finds `count` matches.
  while (out.length < want) {
    const page = parseEntries(await sendCommand(client, ['XRANGE', dlq, start, '+', 'COUNT', '500'])).entries;
    for (const e of page) {
      const d = decodeDeadLetter(e);
      if (q.group !== undefined && d.group !== q.group) continue;
      if (q.ids !== undefined && !q.ids.includes(d.dlqId)) continue;
      out.push(d);
      if (out.length >= want) break;
    }
    const last = page[page.length - 1];
    if (page.length < 500 || !last) break;
    start = `(${last.id}`;
  }
  return out;
}

export interface ReplayOptions extends DeadLetterQuery {
  /**
   * Stream to add the entries to.
   * @defaultValue the stream they came from
   */
  readonly to?: string | undefined;
  /**
   * Gives the target's ID mode: a `deterministic` target is refused.
   * @defaultValue `DEFAULT_STREAM_POLICY` (every stream `auto`)
   */
  readonly policy?: StreamPolicy;
}

/** The defaults of {@link ReplayOptions} (`count`: 10000, not the listing's 100), applied by `replayDeadLetters`. */
export const REPLAY_DEFAULTS = Object.freeze({
  count: 10_000,
  policy: DEFAULT_STREAM_POLICY,
} satisfies Partial<ReplayOptions>);

/**
 * Add dead letters back to a stream (with new automatic IDs) and remove them from the dead-letter
 * stream. A stream whose IDs are derived from its data (the policy's `deterministic` ID mode) refuses
 * entries with automatic IDs, which would sort after later data: replay those `to` another stream.
 */
export async function replayDeadLetters(
  client: RedisClient,
  stream: string,
  options: ReplayOptions = {},
): Promise<number> {
  const opts = withDefaults(REPLAY_DEFAULTS, options);
  const target = opts.to ?? stream;
  if (opts.policy.idMode(target) === 'deterministic') {
    throw new DeadLetterReplayRefusedError(
      `${target} uses IDs derived from its data; replaying with new IDs would break its order. Replay to another stream with --to`,
    );
  }
  const dlq = deadLetterStream(stream);
  const letters = (await listDeadLetters(client, stream, opts)).filter(
    (d) => Object.keys(d.fields).length > 0,
  );
  for (const d of letters) {
    const fields = d.fields as Record<string, string>;
    if (target === stream) {
      // Same hash slot as the dead-letter stream: add and delete atomically.
      await client.multi().xAdd(target, '*', fields).xDel(dlq, d.dlqId).exec();
    } else {
      await client.xAdd(target, '*', fields);
      await client.xDel(dlq, d.dlqId);
    }
  }
  return letters.length;
}

/** Delete dead letters (all of the stream's, or those matching the query). Returns how many. */
export async function purgeDeadLetters(
  client: RedisClient,
  stream: string,
  q: DeadLetterQuery = {},
): Promise<number> {
  const dlq = deadLetterStream(stream);
  if (q.group === undefined && q.ids === undefined) {
    const n = await client.xLen(dlq);
    await client.del(dlq);
    return n;
  }
  const letters = await listDeadLetters(client, stream, { ...q, count: q.count ?? Number.MAX_SAFE_INTEGER });
  if (letters.length === 0) return 0;
  return client.xDel(
    dlq,
    letters.map((d) => d.dlqId),
  );
}
