/**
 * Memory of the Redis behind the bus, from INFO memory: `used_memory` and `maxmemory` (0 = no limit)
 * of the server, or of every master of a cluster. marketbus runs Redis with `noeviction` (evicting
 * stream entries would lose data), so at `maxmemory` writes fail and the feed stops; the gauges of
 * health-metrics.ts let an alert fire before (deploy/prometheus/alerts.yml, RedisMemoryNearLimit).
 */
import { isCluster, type RedisClient } from './connection.js';

export interface RedisMemorySample {
  /** `host:port` of a cluster master; `redis` for a single server. */
  readonly node: string;
  readonly usedBytes: number;
  /** 0 when no limit is set. */
  readonly maxBytes: number;
}

function field(info: string, name: string): number {
  const m = new RegExp(`^${name}:(\\d+)\\r?$`, 'm').exec(info);
  return m?.[1] === undefined ? Number.NaN : Number(m[1]);
}

/** INFO memory, parsed; a field Redis did not report is NaN (the gauge then shows NaN, not a guess). */
export function parseMemoryInfo(info: string): { usedBytes: number; maxBytes: number } {
  return { usedBytes: field(info, 'used_memory'), maxBytes: field(info, 'maxmemory') };
}

export async function redisMemory(client: RedisClient): Promise<RedisMemorySample[]> {
  if (!isCluster(client)) return [{ node: 'redis', ...parseMemoryInfo(await client.info('memory')) }];
  return Promise.all(
    client.masters.map(async (m) => {
      const node = await client.nodeClient(m);
      return { node: `${m.host}:${m.port}`, ...parseMemoryInfo(await node.info('memory')) };
    }),
  );
}
