import { beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { busHealth } from '../../src/bus/bus-health.js';
import type { RedisClient } from '../../src/bus/connection.js';
import {
  listDeadLetters,
  moveToDeadLetter,
  replayDeadLetters,
  type DeadLetterInput,
} from '../../src/bus/dead-letter.js';
import { inspectStream } from '../../src/bus/health.js';
import { BusHealthMetrics } from '../../src/bus/health-metrics.js';
import { deadLetterStream } from '../../src/bus/keys.js';
import { StreamProducer } from '../../src/bus/producer.js';
import type { Retention, StreamPolicy } from '../../src/bus/stream-policy.js';
import { trimOnce } from '../../src/bus/trimmer.js';
import { DeadLetterReplayRefusedError } from '../../src/bus/errors.js';
import { connect, startRedis, uniq } from '../helpers/redis.js';

/**
 * A policy of an application that is not about markets: `orders.<region>` streams keep about 100
 * entries, `ledger.<region>` streams have IDs derived from their data, dead letters keep about 50.
 */
function ordersPolicy(prefix: string): StreamPolicy {
  const orders = new RegExp(`^${prefix}\\.orders\\.[a-z]+$`);
  const ledger = new RegExp(`^${prefix}\\.ledger\\.[a-z]+$`);
  return {
    patterns: [`${prefix}.*`],
    retention: (s): Retention | null =>
      orders.test(s)
        ? { kind: 'maxlen', maxLen: 100 }
        : s.startsWith(`dlq:{${prefix}.`)
          ? { kind: 'maxlen', maxLen: 50 }
          : null,
    idMode: (s) => (ledger.test(s) ? 'deterministic' : 'auto'),
    describe: (s) => (orders.test(s) ? { kind: 'orders' } : ledger.test(s) ? { kind: 'ledger' } : null),
    metricStream: (s) => (orders.test(s) ? `${prefix}.orders.*` : s),
  };
}

let redis: RedisClient;
beforeAll(async () => {
  redis = await connect(await startRedis({ persistence: 'none' }));
});

function letter(stream: string, entryId: string): DeadLetterInput {
  return {
    stream,
    group: 'g',
    entryId,
    consumer: 'c',
    deliveries: 5,
    reason: 'max-deliveries',
    error: new Error('boom'),
    fields: { n: entryId },
  };
}

describe('the bus with a non-market StreamPolicy', () => {
  it('trims orders.eu to its maxlen on every XADD and leaves a stream without retention alone', async () => {
    const prefix = uniq('app');
    const p = new StreamProducer(redis, { policy: ordersPolicy(prefix) });
    const eu = `${prefix}.orders.eu`;
    const other = `${prefix}.audit`;
    await p.publishMany(Array.from({ length: 1000 }, (_, i) => ({ stream: eu, fields: { i: String(i) } })));
    await p.publishMany(
      Array.from({ length: 1000 }, (_, i) => ({ stream: other, fields: { i: String(i) } })),
    );
    const len = await redis.xLen(eu);
    expect(len).toBeGreaterThanOrEqual(100);
    expect(len).toBeLessThan(300); // MAXLEN ~ trims whole macro nodes of 100 entries
    expect(await redis.xLen(other)).toBe(1000);
  });

  it('without a policy writes no retention: the same stream grows untrimmed', async () => {
    const prefix = uniq('app');
    const eu = `${prefix}.orders.eu`;
    await new StreamProducer(redis).publishMany(
      Array.from({ length: 500 }, (_, i) => ({ stream: eu, fields: { i: String(i) } })),
    );
    expect(await redis.xLen(eu)).toBe(500);
  });

  it('refuses to replay dead letters into a deterministic-ID stream, replays into an auto one', async () => {
    const prefix = uniq('app');
    const policy = ordersPolicy(prefix);
    const ledger = `${prefix}.ledger.eu`;
    const eu = `${prefix}.orders.eu`;
    await redis.xAdd(ledger, '1000-0', { n: '1' });
    await redis.xGroupCreate(ledger, 'g', '0');
    await redis.xReadGroup('g', 'c', [{ key: ledger, id: '>' }]);
    await moveToDeadLetter(redis, letter(ledger, '1000-0'), { policy });
    const err = await replayDeadLetters(redis, ledger, { policy }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadLetterReplayRefusedError);
    expect((err as DeadLetterReplayRefusedError).code).toBe('DLQ_REPLAY_REFUSED');
    expect(await listDeadLetters(redis, ledger)).toHaveLength(1);
    // Without the policy the bus does not know the IDs are derived: replay is the caller's call.
    expect(await replayDeadLetters(redis, ledger, { to: eu })).toBe(1);
    expect((await redis.xRange(eu, '-', '+')).map((e) => e.message)).toEqual([{ n: '1000-0' }]);
  });

  it("bounds a dead-letter stream by the policy's retention for it", async () => {
    const prefix = uniq('app');
    const policy = ordersPolicy(prefix);
    const eu = `${prefix}.orders.eu`;
    for (let i = 0; i < 400; i++) await redis.xAdd(eu, `${i + 1}-0`, { i: String(i) });
    await redis.xGroupCreate(eu, 'g', '0');
    await redis.xReadGroup('g', 'c', [{ key: eu, id: '>' }], { COUNT: 400 });
    for (let i = 0; i < 400; i++) await moveToDeadLetter(redis, letter(eu, `${i + 1}-0`), { policy });
    const len = await redis.xLen(deadLetterStream(eu));
    expect(len).toBeGreaterThanOrEqual(50);
    expect(len).toBeLessThan(200);
  });

  it("trims streams that no longer get writes and reports the policy's retention and kinds", async () => {
    const prefix = uniq('app');
    const policy = ordersPolicy(prefix);
    const us = `${prefix}.orders.us`;
    const audit = `${prefix}.audit`;
    for (let i = 0; i < 1000; i++) await redis.xAdd(us, '*', { i: String(i) });
    for (let i = 0; i < 300; i++) await redis.xAdd(audit, '*', { i: String(i) });
    const r = await trimOnce(redis, { policy });
    expect(r.streams).toBe(2);
    expect(r.trimmed).toBeGreaterThanOrEqual(700);
    expect(await redis.xLen(us)).toBeLessThan(300);
    expect(await redis.xLen(audit)).toBe(300);

    const report = await busHealth(redis, { policy });
    expect(report.streams.map((s) => s.stream)).toEqual([audit, us]);
    expect(report.streams.find((s) => s.stream === us)).toMatchObject({
      retention: { kind: 'maxlen', maxLen: 100 },
      catalog: { kind: 'orders' },
      deadLetters: 0,
    });
    expect(report.streams.find((s) => s.stream === audit)).toMatchObject({ retention: null, catalog: null });
    expect((await inspectStream(redis, us))?.catalog).toBeNull(); // no policy: no description
  });

  it('labels the bus health gauges with the policy', async () => {
    const prefix = uniq('app');
    const policy = ordersPolicy(prefix);
    await redis.xAdd(`${prefix}.orders.eu`, '*', { a: '1' });
    await redis.xAdd(`${prefix}.orders.us`, '*', { a: '1' });
    await redis.xAdd(`${prefix}.orders.us`, '*', { a: '2' });
    await redis.xAdd(`${prefix}.ledger.eu`, '5-0', { a: '1' });
    const registry = new Registry();
    expect(BusHealthMetrics.register(registry, redis, { policy, maxAgeMs: 0 })).toBeDefined();
    const text = await registry.metrics();
    expect(text).toContain('bus_health_up 1');
    expect(text).toContain(`bus_health_stream_length{stream="${prefix}.orders.*",kind="orders"} 3`);
    expect(text).toContain(`bus_health_stream_length{stream="${prefix}.ledger.eu",kind="ledger"} 1`);
    expect(text).not.toMatch(new RegExp(`${prefix}\\.orders\\.(eu|us)`));
  });
});
