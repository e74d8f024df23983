/**
 * Defensive parsers for the stream replies whose shape differs across Redis versions, protocols and
 * client versions: flat key/value arrays (RESP2), maps (RESP3), or objects already built by
 * the client; numbers as integers or strings; fields that older servers do not send. Each parser
 * returns one normalized, readonly shape or throws UnexpectedReplyError carrying the raw reply.
 */
import { UnexpectedReplyError } from './errors.js';

export interface StreamEntry {
  readonly id: string;
  readonly fields: Readonly<Record<string, string>>;
}

export interface StreamInfo {
  readonly length: number;
  readonly lastGeneratedId: string;
  readonly firstEntryId: string | null;
  readonly lastEntryId: string | null;
  /** Redis >= 7: entries ever added; null on older servers. */
  readonly entriesAdded: number | null;
  /** Redis >= 7: highest deleted ID; null on older servers. */
  readonly maxDeletedEntryId: string | null;
  readonly groups: number;
}

export interface GroupInfo {
  readonly name: string;
  readonly consumers: number;
  readonly pending: number;
  readonly lastDeliveredId: string;
  /** Redis >= 7; null on older servers. */
  readonly entriesRead: number | null;
  /** Entries not yet delivered to the group; null when Redis cannot tell (after deletions) or is older than 7. */
  readonly lag: number | null;
}

export interface ConsumerInfo {
  readonly name: string;
  readonly pending: number;
  /** Since the consumer's last attempted interaction, ms. */
  readonly idleMs: number;
  /** Redis >= 7.2: since its last successful interaction, ms; null when absent or never. */
  readonly inactiveMs: number | null;
}

export interface PendingSummary {
  readonly count: number;
  readonly minId: string | null;
  readonly maxId: string | null;
  readonly consumers: readonly { readonly name: string; readonly pending: number }[];
}

export interface PendingEntry {
  readonly id: string;
  readonly consumer: string;
  readonly idleMs: number;
  readonly deliveries: number;
}

export interface AutoClaimResult {
  readonly nextId: string;
  readonly entries: readonly StreamEntry[];
  /** IDs that were pending but no longer exist in the stream (trimmed or XDEL'd); Redis removed them from the PEL. */
  readonly deletedIds: readonly string[];
}

export interface ReadGroupReply {
  readonly stream: string;
  readonly entries: readonly StreamEntry[];
  /** IDs whose entry was deleted while pending (re-read of history returns them without fields). */
  readonly deletedIds: readonly string[];
}

type Dict = Record<string, unknown>;

function isBufferLike(v: unknown): v is Buffer {
  return Buffer.isBuffer(v);
}

function str(v: unknown, cmd: string, raw: unknown): string {
  if (typeof v === 'string') return v;
  if (isBufferLike(v)) return v.toString('utf8');
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new UnexpectedReplyError(cmd, raw);
}

function strOrNull(v: unknown, cmd: string, raw: unknown): string | null {
  return v === null || v === undefined ? null : str(v, cmd, raw);
}

function num(v: unknown, cmd: string, raw: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' || isBufferLike(v)) {
    const n = Number(v.toString());
    if (Number.isFinite(n)) return n;
  }
  throw new UnexpectedReplyError(cmd, raw);
}

function numOrNull(v: unknown, cmd: string, raw: unknown): number | null {
  return v === null || v === undefined ? null : num(v, cmd, raw);
}

/** A key/value reply as an object, whether it came as a flat array, a Map or an object. */
function dict(v: unknown, cmd: string, raw: unknown): Dict {
  if (v instanceof Map) {
    const out: Dict = {};
    for (const [k, val] of v as Map<unknown, unknown>) out[str(k, cmd, raw)] = val;
    return out;
  }
  if (Array.isArray(v)) {
    if (v.length % 2 !== 0) throw new UnexpectedReplyError(cmd, raw);
    const out: Dict = {};
    for (let i = 0; i < v.length; i += 2) out[str(v[i], cmd, raw)] = v[i + 1];
    return out;
  }
  if (v !== null && typeof v === 'object' && !isBufferLike(v)) return v as Dict;
  throw new UnexpectedReplyError(cmd, raw);
}

function arr(v: unknown, cmd: string, raw: unknown): readonly unknown[] {
  if (Array.isArray(v)) return v;
  throw new UnexpectedReplyError(cmd, raw);
}

/** Stream entry fields: flat `[k, v, ...]`, a Map, or an object; values are strings. */
export function parseFields(v: unknown, cmd = 'entry', raw: unknown = v): Record<string, string> {
  // Fast path: the client already built a plain object of strings (the common case): use it as is.
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Map) && !isBufferLike(v)) {
    let allStrings = true;
    for (const k in v) {
      if (typeof (v as Record<string, unknown>)[k] !== 'string') {
        allStrings = false;
        break;
      }
    }
    if (allStrings) return v as Record<string, string>;
  }
  const d = dict(v, cmd, raw);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(d)) out[k] = str(val, cmd, raw);
  return out;
}

/**
 * One entry: `[id, fields]`, `{id, message}` (node-redis), or `[id, null]` / `{id, message: null}` for an
 * entry deleted while pending; those return `null` fields.
 */
export function parseEntry(
  v: unknown,
  cmd = 'entry',
  raw: unknown = v,
): { id: string; fields: Record<string, string> | null } {
  if (Array.isArray(v)) {
    if (v.length < 2) throw new UnexpectedReplyError(cmd, raw);
    const id = str(v[0], cmd, raw);
    return { id, fields: v[1] === null || v[1] === undefined ? null : parseFields(v[1], cmd, raw) };
  }
  const d = dict(v, cmd, raw);
  const id = str(d['id'], cmd, raw);
  const m = d['message'] ?? d['fields'];
  return { id, fields: m === null || m === undefined ? null : parseFields(m, cmd, raw) };
}

function splitEntries(
  list: readonly unknown[],
  cmd: string,
  raw: unknown,
): { entries: StreamEntry[]; deletedIds: string[] } {
  const entries: StreamEntry[] = [];
  const deletedIds: string[] = [];
  for (const item of list) {
    if (item === null || item === undefined) continue; // Redis 6.2 XAUTOCLAIM: nil for a deleted entry
    const e = parseEntry(item, cmd, raw);
    if (e.fields === null) deletedIds.push(e.id);
    else entries.push({ id: e.id, fields: e.fields });
  }
  return { entries, deletedIds };
}

/** XRANGE / XREVRANGE / XCLAIM: a list of entries. */
export function parseEntries(v: unknown, cmd = 'XRANGE'): { entries: StreamEntry[]; deletedIds: string[] } {
  if (v === null || v === undefined) return { entries: [], deletedIds: [] };
  return splitEntries(arr(v, cmd, v), cmd, v);
}

/**
 * XREAD / XREADGROUP: nil (timeout), `[[stream, entries], ...]` (RESP2), a Map stream -> entries (RESP3),
 * or node-redis's `[{name, messages}]`.
 */
export function parseReadReply(v: unknown, cmd = 'XREADGROUP'): ReadGroupReply[] {
  if (v === null || v === undefined) return [];
  const pairs: [unknown, unknown][] = [];
  if (v instanceof Map) {
    for (const [k, val] of v as Map<unknown, unknown>) pairs.push([k, val]);
  } else if (Array.isArray(v)) {
    for (const item of v) {
      if (Array.isArray(item) && item.length === 2) pairs.push([item[0], item[1]]);
      else {
        const d = dict(item, cmd, v);
        pairs.push([d['name'] ?? d['stream'], d['messages'] ?? d['entries']]);
      }
    }
  } else {
    for (const [k, val] of Object.entries(dict(v, cmd, v))) pairs.push([k, val]);
  }
  return pairs.map(([name, list]) => {
    const { entries, deletedIds } = splitEntries(arr(list ?? [], cmd, v), cmd, v);
    return { stream: str(name, cmd, v), entries, deletedIds };
  });
}

/** XAUTOCLAIM: `[next, entries]` (6.2) or `[next, entries, deleted]` (>= 7), or node-redis's object. */
export function parseAutoClaim(v: unknown): AutoClaimResult {
  const cmd = 'XAUTOCLAIM';
  let next: unknown;
  let list: unknown;
  let deleted: unknown;
  if (Array.isArray(v)) {
    if (v.length < 2) throw new UnexpectedReplyError(cmd, v);
    [next, list, deleted] = v as unknown[];
  } else {
    const d = dict(v, cmd, v);
    next = d['nextId'];
    list = d['messages'];
    deleted = d['deletedMessages'];
  }
  const { entries, deletedIds } = splitEntries(arr(list ?? [], cmd, v), cmd, v);
  // 6.2 reports a deleted entry as nil in the list without its ID; >= 7 lists the IDs separately.
  const reported =
    deleted === null || deleted === undefined ? [] : arr(deleted, cmd, v).map((x) => str(x, cmd, v));
  return { nextId: str(next, cmd, v), entries, deletedIds: [...deletedIds, ...reported] };
}

/** XINFO STREAM. */
export function parseStreamInfo(v: unknown): StreamInfo {
  const cmd = 'XINFO STREAM';
  const d = dict(v, cmd, v);
  const first = d['first-entry'];
  const last = d['last-entry'];
  return {
    length: num(d['length'], cmd, v),
    lastGeneratedId: str(d['last-generated-id'], cmd, v),
    firstEntryId: first === null || first === undefined ? null : parseEntry(first, cmd, v).id,
    lastEntryId: last === null || last === undefined ? null : parseEntry(last, cmd, v).id,
    entriesAdded: numOrNull(d['entries-added'], cmd, v),
    maxDeletedEntryId: strOrNull(d['max-deleted-entry-id'], cmd, v),
    groups: num(d['groups'] ?? 0, cmd, v),
  };
}

/** XINFO GROUPS. */
export function parseGroups(v: unknown): GroupInfo[] {
  const cmd = 'XINFO GROUPS';
  return arr(v ?? [], cmd, v).map((g) => {
    const d = dict(g, cmd, v);
    return {
      name: str(d['name'], cmd, v),
      consumers: num(d['consumers'], cmd, v),
      pending: num(d['pending'], cmd, v),
      lastDeliveredId: str(d['last-delivered-id'], cmd, v),
      entriesRead: numOrNull(d['entries-read'], cmd, v),
      lag: numOrNull(d['lag'], cmd, v),
    };
  });
}

/** XINFO CONSUMERS. */
export function parseConsumers(v: unknown): ConsumerInfo[] {
  const cmd = 'XINFO CONSUMERS';
  return arr(v ?? [], cmd, v).map((c) => {
    const d = dict(c, cmd, v);
    const inactive = numOrNull(d['inactive'], cmd, v);
    return {
      name: str(d['name'], cmd, v),
      pending: num(d['pending'], cmd, v),
      idleMs: num(d['idle'], cmd, v),
      inactiveMs: inactive === null || inactive < 0 ? null : inactive,
    };
  });
}

/** XPENDING key group (summary form). */
export function parsePendingSummary(v: unknown): PendingSummary {
  const cmd = 'XPENDING';
  let count: unknown;
  let minId: unknown;
  let maxId: unknown;
  let consumers: unknown;
  if (Array.isArray(v)) {
    if (v.length < 4) throw new UnexpectedReplyError(cmd, v);
    [count, minId, maxId, consumers] = v as unknown[];
  } else {
    const d = dict(v, cmd, v);
    count = d['pending'];
    minId = d['firstId'];
    maxId = d['lastId'];
    consumers = d['consumers'];
  }
  const list: { name: string; pending: number }[] = [];
  if (consumers instanceof Map) {
    for (const [k, n] of consumers as Map<unknown, unknown>)
      list.push({ name: str(k, cmd, v), pending: num(n, cmd, v) });
  } else if (consumers !== null && consumers !== undefined) {
    for (const c of arr(consumers, cmd, v)) {
      if (Array.isArray(c)) list.push({ name: str(c[0], cmd, v), pending: num(c[1], cmd, v) });
      else {
        const d = dict(c, cmd, v);
        list.push({
          name: str(d['name'], cmd, v),
          pending: num(d['deliveriesCounter'] ?? d['pending'] ?? d['count'], cmd, v),
        });
      }
    }
  }
  return {
    count: num(count, cmd, v),
    minId: strOrNull(minId, cmd, v),
    maxId: strOrNull(maxId, cmd, v),
    consumers: list,
  };
}

/** XPENDING key group [IDLE ms] start end count [consumer] (extended form). */
export function parsePendingEntries(v: unknown): PendingEntry[] {
  const cmd = 'XPENDING';
  return arr(v ?? [], cmd, v).map((item) => {
    if (Array.isArray(item)) {
      if (item.length < 4) throw new UnexpectedReplyError(cmd, v);
      return {
        id: str(item[0], cmd, v),
        consumer: str(item[1], cmd, v),
        idleMs: num(item[2], cmd, v),
        deliveries: num(item[3], cmd, v),
      };
    }
    const d = dict(item, cmd, v);
    return {
      id: str(d['id'], cmd, v),
      consumer: str(d['consumer'], cmd, v),
      idleMs: num(d['millisecondsSinceLastDelivery'] ?? d['idle'], cmd, v),
      deliveries: num(d['deliveriesCounter'] ?? d['deliveries'], cmd, v),
    };
  });
}
