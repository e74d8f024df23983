import { beforeAll, describe, expect, it } from 'vitest';
import { sendCommand } from '../../src/bus/raw-command.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { holdLease, leaseOwner, releaseLease } from '../../src/bus/lease.js';
import { addOnce, addOnceMany } from '../../src/bus/monotonic.js';
import { connect, startRedis, uniq, type TestRedis } from '../helpers/redis.js';

let server: TestRedis;
let redis: RedisClient;
beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
});

describe('addOnce (exactly-once outputs)', () => {
  it('adds an output once per key and sequence, never an older one, keys independent', async () => {
    const s = `strategy.events.v1.user.${uniq()}`;
    expect(await addOnce(redis, { stream: s, key: 'run1:signal', seq: 100, fields: { a: '1' } })).toMatch(
      /^\d+-\d+$/,
    );
    expect(await addOnce(redis, { stream: s, key: 'run1:signal', seq: 100, fields: { a: '1' } })).toBeNull();
    expect(await addOnce(redis, { stream: s, key: 'run1:signal', seq: 40, fields: { a: '0' } })).toBeNull();
    expect(
      await addOnce(redis, { stream: s, key: 'run2:signal', seq: 100, fields: { a: '2' } }),
    ).not.toBeNull();
    expect(
      await addOnce(redis, {
        stream: s,
        key: 'run1:signal',
        seq: 160,
        fields: { a: '3' },
        retention: { kind: 'maxlen', maxLen: 1000 },
      }),
    ).not.toBeNull();
    expect((await redis.xRange(s, '-', '+')).map((e) => e.message['a'])).toEqual(['1', '2', '3']);
  });

  it('addOnceMany: many outputs of one stream in one call, each deduplicated, in order', async () => {
    const s = `strategy.metrics.v1.user.${uniq()}`;
    const first = await addOnceMany(redis, s, [
      { key: 'a', seq: 1, fields: { n: 'a1' } },
      { key: 'b', seq: 1, fields: { n: 'b1' } },
      { key: 'a', seq: 1, fields: { n: 'a1-again' } },
      { key: 'a', seq: 2, fields: { n: 'a2' }, retention: { kind: 'maxlen', maxLen: 1000 } },
    ]);
    expect(first.map((id) => id !== null)).toEqual([true, true, false, true]);
    const again = await addOnceMany(redis, s, [
      { key: 'a', seq: 2, fields: { n: 'a2' } },
      { key: 'b', seq: 2, fields: { n: 'b2' } },
    ]);
    expect(again.map((id) => id !== null)).toEqual([false, true]);
    expect((await redis.xRange(s, '-', '+')).map((e) => e.message['n'])).toEqual(['a1', 'b1', 'a2', 'b2']);
  });

  it('survives a Redis that forgot its scripts (NOSCRIPT) by loading them again', async () => {
    const s = `strategy.events.v1.user.${uniq()}`;
    await addOnce(redis, { stream: s, key: 'k', seq: 1, fields: { a: '1' } });
    await sendCommand(redis, ['SCRIPT', 'FLUSH']);
    expect(await addOnce(redis, { stream: s, key: 'k', seq: 2, fields: { a: '2' } })).not.toBeNull();
  });
});

describe('leases', () => {
  it('one holder at a time; renew by the holder only; expiry hands it over; release by the holder only', async () => {
    const name = `md.candles.1m.sim:spot:${uniq('L').toUpperCase()}`;
    expect(await holdLease(redis, name, 'a', 300)).toBe(true);
    expect(await holdLease(redis, name, 'b', 300)).toBe(false);
    expect(await holdLease(redis, name, 'a', 300)).toBe(true); // renewed
    expect(await releaseLease(redis, name, 'b')).toBe(false);
    expect(await leaseOwner(redis, name)).toBe('a');
    await new Promise((r) => setTimeout(r, 400)); // a stops renewing: expired
    expect(await holdLease(redis, name, 'b', 300)).toBe(true);
    expect(await holdLease(redis, name, 'a', 300)).toBe(false);
    expect(await releaseLease(redis, name, 'b')).toBe(true);
    expect(await leaseOwner(redis, name)).toBeNull();
  });
});
