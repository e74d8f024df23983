import { beforeAll, describe, expect, it } from 'vitest';
import { sendCommand } from '../../src/bus/raw-command.js';
import { busHealth } from '../../src/bus/bus-health.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { moveToDeadLetter } from '../../src/bus/dead-letter.js';
import { trimOnce } from '../../src/bus/trimmer.js';
import { parseConsumers, parseReadReply } from '../../src/bus/replies.js';
import { connect, startRedis, uniq } from '../helpers/redis.js';
import { CATALOG_POLICY } from '../../src/contracts/catalog.js';

let redis: RedisClient;
beforeAll(async () => {
  redis = await connect(await startRedis({ persistence: 'none' }));
});

describe('bus-wide health', () => {
  it('reports every catalog stream with its retention and flags what is unhealthy', async () => {
    const svc = uniq('h');
    const cmds = `mgmt:${svc}:commands`;
    for (let i = 0; i < 5; i++) await redis.xAdd(cmds, '*', { i: String(i) });
    await redis.xGroupCreate(cmds, 'g', '0');
    const read = await redis.xReadGroup('g', 'slow', [{ key: cmds, id: '>' }], { COUNT: 2 });
    const firstId = parseReadReply(read)[0]?.entries[0]?.id ?? '';
    const healthy = `mgmt:${uniq('ok')}:commands`;
    await redis.xAdd(healthy, '*', { a: '1' });

    const first = await busHealth(redis, {
      policy: CATALOG_POLICY,
      patterns: [`mgmt:${svc}:*`, healthy],
      idleConsumerMs: 60_000,
      stuckPendingMs: 60_000,
    });
    const s = first.streams.find((x) => x.stream === cmds);
    expect(s?.retention).toEqual({ kind: 'maxage', maxAgeMs: 86_400_000 });
    expect(s?.flags).toEqual([]);
    expect(first.streams.find((x) => x.stream === healthy)?.flags).toEqual([]);

    // More entries arrive, more are read and not acked, one is dead-lettered.
    for (let i = 0; i < 5; i++) await redis.xAdd(cmds, '*', { i: String(i + 5) });
    await redis.xReadGroup('g', 'slow', [{ key: cmds, id: '>' }], { COUNT: 2 });
    await moveToDeadLetter(redis, {
      stream: cmds,
      group: 'g',
      entryId: firstId,
      consumer: 'slow',
      deliveries: 5,
      reason: 'max-deliveries',
      error: new Error('x'),
      fields: {},
    });
    await new Promise((r) => setTimeout(r, 30));
    const second = await busHealth(redis, {
      policy: CATALOG_POLICY,
      patterns: [`mgmt:${svc}:*`],
      previous: first,
      idleConsumerMs: 10,
      stuckPendingMs: 10,
    });
    const kinds = second.streams
      .find((x) => x.stream === cmds)
      ?.flags.map((f) => f.kind)
      .sort();
    expect(kinds).toEqual([
      'consumer-idle',
      'dead-letters',
      'lag-growing',
      'pending-growing',
      'pending-stuck',
    ]);
    expect(second.unhealthy).toBe(1);

    const sampled = await busHealth(redis, {
      policy: CATALOG_POLICY,
      patterns: [`mgmt:${svc}:*`],
      sampleMs: 50,
    });
    expect(sampled.streams.find((x) => x.stream === cmds)?.flags.some((f) => f.kind === 'lag-growing')).toBe(
      false,
    );
  });
});

describe('trimmer', () => {
  it('applies catalog retention to streams without writes and removes idle consumers with nothing pending', async () => {
    const user = uniq('u');
    const stream = `strategy.events.v1.user.${user}`;
    const day = 86_400_000;
    const now = Date.now();
    // entries written without trimming: 40 days old and recent
    for (let i = 0; i < 300; i++) await redis.xAdd(stream, `${now - 40 * day + i}-0`, { old: '1' });
    for (let i = 0; i < 3; i++) await redis.xAdd(stream, `${now - 1000 + i}-0`, { new: '1' });
    await redis.xGroupCreate(stream, 'g', '$');
    await sendCommand(redis, ['XGROUP', 'CREATECONSUMER', stream, 'g', 'gone']); // a consumer with nothing pending
    await new Promise((r) => setTimeout(r, 30));
    const r = await trimOnce(redis, { policy: CATALOG_POLICY, idleConsumerMs: 10 });
    expect(r.trimmed).toBeGreaterThanOrEqual(200); // MINID ~ removes whole nodes of the 30-day-old part
    const left = await redis.xRange(stream, '-', '+');
    expect(left.filter((e) => e.message['new'] === '1')).toHaveLength(3);
    expect(r.consumersRemoved).toBeGreaterThanOrEqual(1);
    const consumers = parseConsumers(await sendCommand(redis, ['XINFO', 'CONSUMERS', stream, 'g']));
    expect(consumers).toHaveLength(0);
  });
});
