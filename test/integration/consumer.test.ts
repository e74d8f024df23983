import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sendCommand } from '../../src/bus/raw-command.js';
import { DecodeError } from '../../src/bus/errors.js';
import { StreamConsumer, type ConsumerOptions, type Delivery } from '../../src/bus/consumer.js';
import { listDeadLetters, replayDeadLetters, purgeDeadLetters } from '../../src/bus/dead-letter.js';
import { BusMetrics } from '../../src/bus/metrics.js';
import type { RedisClient } from '../../src/bus/connection.js';
import type { Fields } from '../../src/bus/codec.js';
import { parsePendingSummary } from '../../src/bus/replies.js';
import { connect, startRedis, uniq, waitFor, type TestRedis } from '../helpers/redis.js';
import { CATALOG_POLICY } from '../../src/contracts/catalog.js';

let server: TestRedis;
let redis: RedisClient;
const open: StreamConsumer<unknown>[] = [];

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function consumer<T = Fields>(opts: ConsumerOptions<T>): StreamConsumer<T> {
  const c = new StreamConsumer<T>(redis, { blockMs: 200, retryIntervalMs: 50, ...opts });
  open.push(c as StreamConsumer<unknown>);
  return c;
}

async function publish(stream: string, n: number, from = 0): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => redis.xAdd(stream, '*', { n: String(from + i) })));
}

async function pendingCount(stream: string, group: string): Promise<number> {
  return parsePendingSummary(await sendCommand(redis, ['XPENDING', stream, group])).count;
}

describe('StreamConsumer', () => {
  it('reads many streams in one consumer, in order per stream, and acks everything', async () => {
    const streams = [1, 2, 3].map(() => `mgmt:${uniq()}:commands`);
    const group = uniq('g');
    const seen = new Map<string, number[]>();
    const c = consumer({
      group,
      consumer: 'c1',
      streams,
      startId: '0',
      batchSize: 7,
      handler: (d) => {
        const list = seen.get(d.stream) ?? [];
        list.push(Number(d.fields['n']));
        seen.set(d.stream, list);
      },
    });
    for (const s of streams) await publish(s, 50);
    await c.start();
    await waitFor(() => [...seen.values()].reduce((a, l) => a + l.length, 0) === 150, 10_000, 'all entries');
    for (const s of streams) expect(seen.get(s)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await waitFor(async () => (await pendingCount(streams[0] as string, group)) === 0, 5000, 'acks');
    for (const s of streams) expect(await pendingCount(s, group)).toBe(0);
  });

  it('never has more entries in flight than maxInFlight', async () => {
    const streams = [1, 2, 3, 4].map(() => `mgmt:${uniq()}:commands`);
    let max = 0;
    let total = 0;
    const c = consumer({
      group: uniq('g'),
      consumer: 'c1',
      streams,
      startId: '0',
      maxInFlight: 8,
      batchSize: 50,
      handler: async () => {
        max = Math.max(max, c.inFlightCount);
        total++;
        await new Promise((r) => setTimeout(r, 1));
      },
    });
    for (const s of streams) await publish(s, 40);
    await c.start();
    await waitFor(() => total === 160, 20_000, 'all entries');
    expect(max).toBeGreaterThan(0);
    expect(max).toBeLessThanOrEqual(8);
  });

  it('retries a failing handler with backoff from the delivery count, then acks', async () => {
    const stream = `mgmt:${uniq()}:commands`;
    const attempts: { deliveries: number; at: number }[] = [];
    const c = consumer({
      group: uniq('g'),
      consumer: 'c1',
      streams: [stream],
      startId: '0',
      retryBaseMs: 100,
      maxDeliveries: 5,
      handler: (d) => {
        attempts.push({ deliveries: d.deliveries, at: Date.now() });
        if (attempts.length < 3) throw new Error('transient');
      },
    });
    await publish(stream, 1);
    await c.start();
    await waitFor(() => attempts.length === 3, 10_000, 'three attempts');
    expect(attempts.map((a) => a.deliveries)).toEqual([1, 2, 3]);
    // second retry waits about twice as long as the first (100 ms, then 200 ms)
    const gap1 = (attempts[1]?.at ?? 0) - (attempts[0]?.at ?? 0);
    const gap2 = (attempts[2]?.at ?? 0) - (attempts[1]?.at ?? 0);
    expect(gap1).toBeGreaterThanOrEqual(90);
    expect(gap2).toBeGreaterThanOrEqual(190);
    await waitFor(async () => (await pendingCount(stream, c.group)) === 0, 5000, 'ack after success');
  });

  it('moves an always-failing entry to dead letters after maxDeliveries and goes on', async () => {
    const stream = `mgmt:${uniq()}:commands`;
    const metrics = new BusMetrics();
    const ok: number[] = [];
    const c = consumer({
      group: uniq('g'),
      consumer: 'c1',
      streams: [stream],
      startId: '0',
      retryBaseMs: 20,
      retryMaxMs: 40,
      maxDeliveries: 3,
      metrics,
      handler: (d) => {
        if (d.fields['n'] === '2') throw new Error('always fails');
        ok.push(Number(d.fields['n']));
      },
    });
    await publish(stream, 5);
    await c.start();
    await waitFor(async () => (await listDeadLetters(redis, stream)).length === 1, 10_000, 'dead letter');
    expect(ok).toEqual([0, 1, 3, 4]);
    const [dl] = await listDeadLetters(redis, stream);
    expect(dl).toMatchObject({
      stream,
      group: c.group,
      consumer: 'c1',
      deliveries: 3,
      reason: 'max-deliveries',
      error: 'always fails',
    });
    expect(dl?.fields).toEqual({ n: '2' });
    await waitFor(async () => (await pendingCount(stream, c.group)) === 0, 5000, 'nothing pending');
    // the consumer goes on with new entries
    await publish(stream, 1, 10);
    await waitFor(() => ok.includes(10), 5000, 'later entry');
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/bus_entries_dead_lettered_total\{[^}]*reason="max-deliveries"[^}]*\} 1/);
  });

  it('sends a poison entry (decode failure) straight to dead letters; replay and purge work', async () => {
    const stream = `mgmt:${uniq()}:commands`;
    const values: number[] = [];
    const decode = (f: Fields): number => {
      const n = Number(f['n']);
      if (!Number.isInteger(n)) throw new DecodeError('n is not an integer', [`n: ${f['n'] ?? ''}`]);
      return n;
    };
    const c = consumer<number>({
      group: uniq('g'),
      consumer: 'c1',
      streams: [stream],
      startId: '0',
      decode,
      handler: (d: Delivery<number>) => void values.push(d.value),
    });
    await redis.xAdd(stream, '*', { n: '1' });
    await redis.xAdd(stream, '*', { n: 'oops' });
    await redis.xAdd(stream, '*', { n: '3' });
    await c.start();
    await waitFor(() => values.length === 2, 5000, 'good entries');
    expect(values).toEqual([1, 3]);
    const dls = await listDeadLetters(redis, stream, { group: c.group });
    expect(dls).toHaveLength(1);
    expect(dls[0]).toMatchObject({ reason: 'decode', deliveries: 1, errorCode: 'DECODE_FAILED' });
    expect(await listDeadLetters(redis, stream, { group: 'other' })).toHaveLength(0);

    // replay puts it back on the stream; it fails to decode again and returns to the dead letters
    expect(await replayDeadLetters(redis, stream, { policy: CATALOG_POLICY })).toBe(1);
    await waitFor(async () => (await listDeadLetters(redis, stream)).length === 1, 5000, 'dead again');
    expect(await purgeDeadLetters(redis, stream)).toBe(1);
    expect(await listDeadLetters(redis, stream)).toHaveLength(0);
  });

  it('keeps a stream in order after a failure when ordered', async () => {
    const stream = `mgmt:${uniq()}:commands`;
    const handled: number[] = [];
    let failOnce = true;
    const c = consumer({
      group: uniq('g'),
      consumer: 'c1',
      streams: [stream],
      startId: '0',
      ordered: true,
      retryBaseMs: 50,
      handler: (d) => {
        const n = Number(d.fields['n']);
        if (n === 3 && failOnce) {
          failOnce = false;
          throw new Error('once');
        }
        handled.push(n);
      },
    });
    await publish(stream, 10);
    await c.start();
    await waitFor(() => handled.length === 10, 10_000, 'all handled');
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await publish(stream, 2, 10);
    await waitFor(() => handled.length === 12, 5000, 'stream resumed');
  });

  it('drains a pending list over ten times the claim count left by a dead consumer', async () => {
    const stream = `mgmt:${uniq()}:commands`;
    const group = uniq('g');
    await redis.xGroupCreate(stream, group, '0', { MKSTREAM: true });
    await publish(stream, 250);
    // a consumer that read everything and died without acking
    await redis.xReadGroup(group, 'ghost', [{ key: stream, id: '>' }], { COUNT: 1000 });
    expect(await pendingCount(stream, group)).toBe(250);
    const seen = new Set<string>();
    const claimed: string[] = [];
    const c = consumer({
      group,
      consumer: 'survivor',
      streams: [stream],
      claimIntervalMs: 50,
      claimMinIdleMs: 100,
      claimBatchSize: 10,
      handler: (d) => void seen.add(d.id),
    });
    c.on('claimed', (_s, ids) => claimed.push(...ids));
    await c.start();
    await waitFor(() => seen.size === 250, 20_000, 'all 250 reclaimed');
    await waitFor(async () => (await pendingCount(stream, group)) === 0, 5000, 'all acked');
    expect(claimed.length).toBeGreaterThanOrEqual(250);
  });

  it('dead-letters an entry trimmed while pending and processes the rest', async () => {
    const stream = `mgmt:${uniq()}:commands`;
    const group = uniq('g');
    await redis.xGroupCreate(stream, group, '0', { MKSTREAM: true });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await redis.xAdd(stream, '*', { n: String(i) }));
    await redis.xReadGroup(group, 'ghost', [{ key: stream, id: '>' }], { COUNT: 10 });
    await redis.xTrim(stream, 'MAXLEN', 3); // the two oldest go while pending
    const seen: string[] = [];
    const c = consumer({
      group,
      consumer: 'survivor',
      streams: [stream],
      claimIntervalMs: 50,
      claimMinIdleMs: 50,
      handler: (d) => void seen.push(d.fields['n'] ?? ''),
    });
    await c.start();
    await waitFor(() => seen.length === 3, 10_000, 'surviving entries');
    expect(seen).toEqual(['2', '3', '4']);
    await waitFor(
      async () => (await listDeadLetters(redis, stream)).length === 2,
      5000,
      'trimmed ones recorded',
    );
    const dls = await listDeadLetters(redis, stream);
    expect(dls.map((d) => d.entryId)).toEqual(ids.slice(0, 2));
    expect(dls.every((d) => d.reason === 'deleted-while-pending')).toBe(true);
    expect(await pendingCount(stream, group)).toBe(0);
  });

  it('close() interrupts a blocked read at once and flushes acks; it is idempotent', async () => {
    const stream = `mgmt:${uniq()}:commands`;
    let handled = 0;
    const c = consumer({
      group: uniq('g'),
      consumer: 'c1',
      streams: [stream],
      startId: '0',
      blockMs: 30_000,
      handler: () => {
        handled++;
      },
    });
    await publish(stream, 3);
    await c.start();
    await waitFor(() => handled === 3, 5000, 'entries');
    await new Promise((r) => setTimeout(r, 100)); // now blocked in XREADGROUP for 30 s
    const t0 = Date.now();
    await Promise.all([c.close(), c.close()]);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await pendingCount(stream, c.group)).toBe(0);
    await c.close();
  });
});
