/**
 * What Redis says about itself during the soak: INFO memory and command counters, the number of entries
 * the streams hold (XLEN, pipelined), and MEMORY USAGE of sample streams.
 */
import type { createClient } from 'redis';

export type Client = ReturnType<typeof createClient>;

export interface RedisInfo {
  readonly used_memory: number;
  readonly used_memory_rss: number;
  readonly total_commands_processed: number;
  /** Calls per command name (`xadd`, `xread`, `evalsha`, ...), from INFO commandstats. */
  readonly calls: Readonly<Record<string, number>>;
}

/** INFO as `field -> value` (all sections asked for). */
function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

export async function redisInfo(client: Client): Promise<RedisInfo> {
  const raw = (await client.sendCommand(['INFO', 'memory', 'stats', 'commandstats'])) as unknown;
  const info = parseInfo(String(raw));
  const calls: Record<string, number> = {};
  for (const [k, v] of info) {
    if (!k.startsWith('cmdstat_')) continue;
    const m = /calls=(\d+)/.exec(v);
    if (m?.[1]) calls[k.slice('cmdstat_'.length)] = Number(m[1]);
  }
  return {
    used_memory: Number(info.get('used_memory') ?? NaN),
    used_memory_rss: Number(info.get('used_memory_rss') ?? NaN),
    total_commands_processed: Number(info.get('total_commands_processed') ?? NaN),
    calls,
  };
}

/** Sum of XLEN over `streams` (missing streams count 0), pipelined in chunks of 1,000. */
export async function totalEntries(client: Client, streams: readonly string[]): Promise<number> {
  let sum = 0;
  for (let i = 0; i < streams.length; i += 1000) {
    const lens = await Promise.all(streams.slice(i, i + 1000).map((s) => client.sendCommand(['XLEN', s])));
    for (const n of lens) sum += Number(n);
  }
  return sum;
}

export interface StreamMemory {
  readonly stream: string;
  readonly entries: number;
  /** MEMORY USAGE with SAMPLES 0 (every node counted), bytes. */
  readonly bytes: number;
  readonly bytes_per_entry: number | null;
}

export async function streamMemory(client: Client, stream: string): Promise<StreamMemory> {
  const [len, bytes] = await Promise.all([
    client.sendCommand(['XLEN', stream]),
    client.sendCommand(['MEMORY', 'USAGE', stream, 'SAMPLES', '0']),
  ]);
  const entries = Number(len);
  const b = bytes === null ? 0 : Number(bytes);
  return {
    stream,
    entries,
    bytes: b,
    bytes_per_entry: entries > 0 ? Math.round((b / entries) * 10) / 10 : null,
  };
}
