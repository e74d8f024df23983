/**
 * Attacks a full Redis: without a bound, one user filling Redis stops the feed for everyone. Redis runs
 * with maxmemory and noeviction, and the API's gauges show used and max memory as the real server
 * reports them, so RedisMemoryNearLimit (deploy/prometheus/alerts.yml) fires before writes fail. The
 * Lua and password controls are tried in test/integration/acl.test.ts and up-lifecycle.test.ts.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BusHealthMetrics } from '../../src/bus/health-metrics.js';
import { parseMemoryInfo } from '../../src/bus/redis-memory.js';
import { CATALOG_POLICY } from '../../src/contracts/catalog.js';
import { connect, startRedis } from '../helpers/redis.js';

async function gauge(registry: Registry, name: string): Promise<number[]> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  return (await m.get()).values.map((v) => v.value);
}

describe('Redis memory', () => {
  it('the gauges read used_memory and maxmemory of the real server (every master of a cluster)', async () => {
    const server = await startRedis({
      extraArgs: ['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'],
    });
    const redis = await connect(server);
    // Fill some memory, so used_memory is not a constant of an empty server.
    await redis.set('{x}:blob', 'x'.repeat(2_000_000));
    const registry = new Registry();
    BusHealthMetrics.register(registry, redis, { policy: CATALOG_POLICY, maxAgeMs: 0 });
    const max = await gauge(registry, 'marketbus_redis_maxmemory_bytes');
    const used = await gauge(registry, 'marketbus_redis_used_memory_bytes');
    expect(max.length).toBeGreaterThan(0);
    expect(max.every((v) => v === 64 * 1024 * 1024)).toBe(true);
    expect(used.reduce((a, b) => a + b, 0)).toBeGreaterThan(2_000_000);
    for (const u of used) expect(u).toBeLessThan(64 * 1024 * 1024);
    expect(await gauge(registry, 'bus_health_up')).toEqual([1]);
  });

  it('parses INFO memory as Redis writes it (CRLF lines)', () => {
    expect(
      parseMemoryInfo('# Memory\r\nused_memory:1234\r\nused_memory_human:1.2K\r\nmaxmemory:0\r\n'),
    ).toEqual({
      usedBytes: 1234,
      maxBytes: 0,
    });
  });
});
