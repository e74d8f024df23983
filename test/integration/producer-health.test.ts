import { beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/bus/connection.js';
import { inspectStream, scanStreams } from '../../src/bus/health.js';
import { BusMetrics } from '../../src/bus/metrics.js';
import { StreamProducer } from '../../src/bus/producer.js';
import { connect, startRedis, uniq } from '../helpers/redis.js';
import { CATALOG_POLICY } from '../../src/contracts/catalog.js';

let redis: RedisClient;

beforeAll(async () => {
  const server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
});

describe('StreamProducer', () => {
  it('adds with explicit IDs and reports duplicates and older IDs as typed no-ops', async () => {
    const metrics = new BusMetrics();
    const p = new StreamProducer(redis, { policy: CATALOG_POLICY, metrics });
    const s = `md.candles.1m.sim:spot:${uniq('T').toUpperCase()}`;
    expect(await p.publish(s, { close: '1' }, { id: '60000-0' })).toEqual({ status: 'added', id: '60000-0' });
    expect(await p.publish(s, { close: '2' }, { id: '60000-0' })).toEqual({
      status: 'duplicate',
      id: '60000-0',
    });
    expect(await p.publish(s, { close: '0' }, { id: '0-1' })).toEqual({ status: 'duplicate', id: '0-1' });
    expect(await redis.xLen(s)).toBe(1);
    const text = await metrics.registry.metrics();
    expect(text).toContain(`bus_publish_duplicates_total{stream="${s}"} 2`);
    expect(text).toContain(`bus_entries_published_total{stream="${s}"} 1`);
  });

  it('publishes batches with outcomes in input order', async () => {
    const p = new StreamProducer(redis, { policy: CATALOG_POLICY, batchSize: 3 });
    const a = `mgmt:${uniq()}:commands`;
    const b = `mgmt:${uniq()}:commands`;
    const t = Date.now(); // these streams keep one day by age (MINID), so IDs must be recent
    const out = await p.publishMany([
      { stream: a, fields: { n: '1' }, id: `${t}-0` },
      { stream: b, fields: { n: '1' } },
      { stream: a, fields: { n: '2' }, id: `${t}-0` },
      { stream: a, fields: { n: '3' }, id: `${t}-1` },
      { stream: b, fields: { n: '2' } },
    ]);
    expect(out.map((o) => o.status)).toEqual(['added', 'added', 'duplicate', 'added', 'added']);
    expect(await redis.xLen(a)).toBe(2);
  });

  it('keeps streams near their MAXLEN (approximate trimming)', async () => {
    const p = new StreamProducer(redis, { policy: CATALOG_POLICY });
    const s = `mgmt:${uniq()}:status`; // not a catalog kind with maxlen; give it explicitly
    await p.publishMany(
      Array.from({ length: 3000 }, (_, i) => ({
        stream: s,
        fields: { i: String(i) },
        retention: { kind: 'maxlen' as const, maxLen: 1000 },
      })),
    );
    const len = await redis.xLen(s);
    expect(len).toBeGreaterThanOrEqual(1000);
    expect(len).toBeLessThan(1200);
  });

  it('trims by age with MINID', async () => {
    let now = 1_000_000;
    const p = new StreamProducer(redis, { policy: CATALOG_POLICY, now: () => now });
    const s = `mgmt:${uniq()}:commands`;
    const age = { kind: 'maxage' as const, maxAgeMs: 10_000 };
    // 200 entries a second apart in ID time; with `~` Redis trims whole macro nodes (100 entries each)
    for (let i = 0; i < 300; i++) {
      now = 1_000_000 + i * 1000;
      await p.publish(s, { i: String(i) }, { id: `${now}-0`, retention: age });
    }
    const first = (await redis.xRange(s, '-', '+', { COUNT: 1 }))[0]?.id ?? '';
    expect(Number(first.split('-')[0])).toBeGreaterThan(1_000_000 + 100 * 1000);
    expect(await redis.xLen(s)).toBeLessThan(300);
  });
});

describe('health', () => {
  it('reports length, IDs, groups, lag, pending, oldest pending and consumers', async () => {
    const s = `mgmt:${uniq()}:commands`;
    for (let i = 1; i <= 10; i++) await redis.xAdd(s, `${i}-0`, { i: String(i) });
    await redis.xGroupCreate(s, 'g', '0');
    await redis.xReadGroup('g', 'c1', [{ key: s, id: '>' }], { COUNT: 4 });
    await redis.xAck(s, 'g', ['1-0']);
    const h = await inspectStream(redis, s, { policy: CATALOG_POLICY });
    expect(h).toMatchObject({
      stream: s,
      length: 10,
      firstEntryId: '1-0',
      lastEntryId: '10-0',
      deadLetters: 0,
    });
    expect(h?.catalog?.kind).toBe('service-commands');
    const g = h?.groups[0];
    expect(g).toMatchObject({ name: 'g', pending: 3, lag: 6, lagCounted: false, oldestPendingId: '2-0' });
    expect(g?.consumerList.map((c) => c.name)).toEqual(['c1']);
    expect(await scanStreams(redis, 'mgmt:*')).toContain(s);
    expect(await inspectStream(redis, `missing:${uniq()}`)).toBeNull();
  });

  it('counts the lag itself when Redis reports NULL after deletions', async () => {
    const s = `mgmt:${uniq()}:commands`;
    for (let i = 1; i <= 10; i++) await redis.xAdd(s, `${i}-0`, { i: String(i) });
    await redis.xGroupCreate(s, 'g', '0');
    await redis.xReadGroup('g', 'c1', [{ key: s, id: '>' }], { COUNT: 2 });
    await redis.xDel(s, '5-0'); // a deletion past the group's position makes Redis 7 unable to tell the lag
    const g = (await inspectStream(redis, s))?.groups[0];
    expect(g?.lag).toBe(7);
    expect(g?.lagCounted).toBe(true);
  });
});
