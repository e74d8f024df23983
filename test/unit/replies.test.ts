import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { UnexpectedReplyError } from '../../src/bus/errors.js';
import {
  parseAutoClaim,
  parseConsumers,
  parseEntries,
  parseGroups,
  parsePendingEntries,
  parsePendingSummary,
  parseReadReply,
  parseStreamInfo,
} from '../../src/bus/replies.js';

/** Replies recorded from redis-server 7.0 over a raw socket (test/fixtures/record-replies.mjs); maps kept as Map. */
const recorded = JSON.parse(
  readFileSync(new URL('../fixtures/replies-redis-7.0.json', import.meta.url), 'utf8'),
  (_k, v: unknown) =>
    v !== null && typeof v === 'object' && '__map' in v
      ? new Map((v as { __map: [unknown, unknown][] }).__map)
      : v,
) as Record<'resp2' | 'resp3', Record<string, unknown>>;

describe.each(['resp2', 'resp3'] as const)('recorded Redis 7.0 replies over %s', (proto) => {
  const r = recorded[proto];
  const s = proto === 'resp2' ? 'rec:2' : 'rec:3';

  it('XREADGROUP', () => {
    expect(parseReadReply(r['xreadgroup'])).toEqual([
      {
        stream: s,
        entries: [
          { id: '1-0', fields: { a: '1', b: 'x' } },
          { id: '2-0', fields: { a: '2' } },
          { id: '3-0', fields: { a: '3' } },
        ],
        deletedIds: [],
      },
    ]);
    expect(parseReadReply(r['xreadgroup_empty'])).toEqual([]);
  });

  it('XREADGROUP of history with an entry deleted while pending', () => {
    const [batch] = parseReadReply(r['xreadgroup_history_deleted']);
    expect(batch?.entries.map((e) => e.id)).toEqual(['1-0', '3-0']);
    expect(batch?.deletedIds).toEqual(['2-0']);
  });

  it('XPENDING summary and extended', () => {
    expect(parsePendingSummary(r['xpending_summary'])).toEqual({
      count: 3,
      minId: '1-0',
      maxId: '3-0',
      consumers: [{ name: 'c1', pending: 3 }],
    });
    expect(parsePendingSummary(r['xpending_summary_empty'])).toEqual({
      count: 0,
      minId: null,
      maxId: null,
      consumers: [],
    });
    const ext = parsePendingEntries(r['xpending_extended']);
    expect(ext.map((p) => [p.id, p.consumer, p.deliveries])).toEqual([
      ['1-0', 'c1', 1],
      ['2-0', 'c1', 1],
      ['3-0', 'c1', 1],
    ]);
    expect(ext.every((p) => p.idleMs >= 0)).toBe(true);
  });

  it('XAUTOCLAIM reports entries deleted while pending separately (Redis >= 7)', () => {
    const a = parseAutoClaim(r['xautoclaim_deleted']);
    expect(a.nextId).toBe('0-0');
    expect(a.entries.map((e) => e.id)).toEqual(['1-0', '3-0']);
    expect(a.deletedIds).toEqual(['2-0']);
  });

  it('XCLAIM and XRANGE', () => {
    expect(parseEntries(r['xclaim']).entries).toEqual([{ id: '1-0', fields: { a: '1', b: 'x' } }]);
    expect(parseEntries(r['xrange']).entries.map((e) => e.id)).toEqual(['1-0', '3-0']);
  });

  it('XINFO STREAM, GROUPS, CONSUMERS', () => {
    expect(parseStreamInfo(r['xinfo_stream'])).toEqual({
      length: 2,
      lastGeneratedId: '3-0',
      firstEntryId: '1-0',
      lastEntryId: '3-0',
      entriesAdded: 3,
      maxDeletedEntryId: '2-0',
      groups: 1,
    });
    const [g] = parseGroups(r['xinfo_groups']);
    expect(g).toMatchObject({ name: 'g', consumers: 2, lastDeliveredId: '3-0', entriesRead: 3 });
    const cs = parseConsumers(r['xinfo_consumers']);
    expect(cs.map((c) => c.name).sort()).toEqual(['c1', 'c2']);
  });
});

describe('older and other shapes', () => {
  it('Redis 6.2 XAUTOCLAIM: two elements, nil for a deleted entry', () => {
    const a = parseAutoClaim(['5-0', [['1-0', ['a', '1']], null]]);
    expect(a).toEqual({ nextId: '5-0', entries: [{ id: '1-0', fields: { a: '1' } }], deletedIds: [] });
  });

  it('Redis 6.2 XINFO GROUPS without entries-read and lag', () => {
    expect(parseGroups([['name', 'g', 'consumers', 1, 'pending', 0, 'last-delivered-id', '0-0']])).toEqual([
      { name: 'g', consumers: 1, pending: 0, lastDeliveredId: '0-0', entriesRead: null, lag: null },
    ]);
  });

  it('Redis 7 XINFO GROUPS with a NULL lag after deletions', () => {
    const [g] = parseGroups([
      ['name', 'g', 'consumers', 1, 'pending', 0, 'last-delivered-id', '1-0', 'entries-read', 1, 'lag', null],
    ]);
    expect(g?.lag).toBeNull();
  });

  it('Redis 5 XINFO STREAM without entries-added; an empty stream', () => {
    const info = parseStreamInfo([
      'length',
      0,
      'last-generated-id',
      '0-0',
      'groups',
      0,
      'first-entry',
      null,
      'last-entry',
      null,
    ]);
    expect(info).toMatchObject({ length: 0, firstEntryId: null, lastEntryId: null, entriesAdded: null });
  });

  it('Redis 7.2 XINFO CONSUMERS with inactive, -1 for never', () => {
    expect(parseConsumers([['name', 'c', 'pending', 0, 'idle', 5, 'inactive', -1]])).toEqual([
      { name: 'c', pending: 0, idleMs: 5, inactiveMs: null },
    ]);
  });

  it('node-redis objects and string numbers', () => {
    expect(parseReadReply([{ name: 's', messages: [{ id: '1-0', message: { a: '1' } }] }])).toEqual([
      { stream: 's', entries: [{ id: '1-0', fields: { a: '1' } }], deletedIds: [] },
    ]);
    expect(
      parsePendingEntries([
        { id: '1-0', consumer: 'c', millisecondsSinceLastDelivery: '7', deliveriesCounter: '2' },
      ]),
    ).toEqual([{ id: '1-0', consumer: 'c', idleMs: 7, deliveries: 2 }]);
    expect(
      parseAutoClaim({
        nextId: '0-0',
        messages: [{ id: '1-0', message: { a: '1' } }, null],
        deletedMessages: ['2-0'],
      }).deletedIds,
    ).toEqual(['2-0']);
  });

  it('buffers as strings', () => {
    expect(parseEntries([[Buffer.from('1-0'), [Buffer.from('k'), Buffer.from('v')]]]).entries).toEqual([
      { id: '1-0', fields: { k: 'v' } },
    ]);
  });

  it('unknown shapes throw UnexpectedReplyError carrying the raw reply', () => {
    for (const bad of ['OK', 42, [['1-0']], ['odd', 'length', 'list'], { nextId: 5 }]) {
      let caught: unknown;
      try {
        parseAutoClaim(bad);
        parseStreamInfo(bad);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(UnexpectedReplyError);
      expect((caught as UnexpectedReplyError).code).toBe('REPLY_UNEXPECTED');
      expect((caught as UnexpectedReplyError).raw.length).toBeGreaterThan(0);
    }
    expect(() => parseGroups([['name', 'g', 'consumers', 'many']])).toThrow(UnexpectedReplyError);
  });
});
