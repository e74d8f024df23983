/**
 * Bus-wide health as Prometheus gauges, read from Redis when scraped: what a bus health report shows
 * (see bus-health.ts), for alert rules and dashboards (deploy/prometheus/alerts.yml,
 * deploy/grafana/dashboards/marketbus.json). One process per deployment should export them
 * (they read the whole keyspace the policy covers), whatever the number of producers and consumers.
 *
 * | metric                                              | what                                                       |
 * | --------------------------------------------------- | ---------------------------------------------------------- |
 * | `bus_health_up`                                     | 1 when the last look at Redis succeeded, else 0             |
 * | `bus_health_duration_seconds`                       | how long the last look took                                 |
 * | `bus_health_streams{kind}`                          | streams seen per kind                                       |
 * | `bus_health_stream_length{stream,kind}`             | XLEN                                                        |
 * | `bus_health_dead_letters{stream,kind}`              | entries in `dlq:{<stream>}` (only streams that have one)    |
 * | `bus_health_group_pending{stream,kind,group}`       | delivered, not acknowledged                                 |
 * | `bus_health_group_lag{stream,kind,group}`           | not yet delivered to the group (absent when Redis cannot tell) |
 * | `bus_health_group_oldest_pending_seconds{...}`      | idle time of the oldest pending entry (0 when none)         |
 * | `bus_health_group_consumers{stream,kind,group}`     | consumers in the group                                      |
 * | `marketbus_redis_used_memory_bytes{node}`           | INFO memory `used_memory` (every master of a cluster)       |
 * | `marketbus_redis_maxmemory_bytes{node}`             | INFO memory `maxmemory`, 0 when unlimited                   |
 *
 * Labels come from the policy: `kind` is `StreamPolicy.describe(stream).kind` (`other` when none), and
 * `stream` is `StreamPolicy.metricStream(stream)` (the name when absent). Streams that share a `stream`
 * label are summed (oldest pending: the largest), so a policy can keep the number of series from
 * growing with, say, users.
 *
 * Cost: a look SCANs the policy's patterns and every dead-letter stream (`dlq:*`), then per stream XLEN
 * and XINFO GROUPS (pipelined, a bounded number at once), and the full inspection (consumers, XPENDING)
 * only for streams that have groups. A look younger than `maxAgeMs` is reused, so several scrapers do
 * not multiply the load.
 */
import { Gauge, type Registry } from 'prom-client';
import type { RedisClient } from './connection.js';
import { redisMemory, type RedisMemorySample } from './redis-memory.js';
import { inspectStream, scanStreams } from './health.js';
import { sendCommand } from './raw-command.js';
import { parseGroups } from './replies.js';
import { DEAD_LETTER_PATTERN, deadLetterSource } from './keys.js';
import { DEFAULT_STREAM_POLICY, type StreamPolicy } from './stream-policy.js';
import { TimeoutError, errorMessage } from '../util/errors.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import type { Logger } from '../util/log.js';

export interface BusHealthMetricsOptions {
  /**
   * Gives the SCAN patterns of the streams to look at (`dlq:*` among them is ignored: dead-letter
   * streams are always counted, under their source stream) and the `kind` and `stream` labels.
   * @defaultValue `DEFAULT_STREAM_POLICY` (pattern `*`, kind `other`, stream label = name)
   */
  readonly policy?: StreamPolicy;
  /**
   * A look younger than this is served again instead of asking Redis, ms.
   * @defaultValue 5000
   */
  readonly maxAgeMs?: number;
  /**
   * Longest a scrape waits for a look; past it `bus_health_up` is 0 for that scrape, ms.
   * @defaultValue 8000
   */
  readonly timeoutMs?: number;
  /**
   * Streams inspected at once (their commands are pipelined), streams.
   * @defaultValue 32
   */
  readonly concurrency?: number;
  /**
   * Where failing and recovering looks are reported.
   * @defaultValue none
   */
  readonly log?: Logger;
}

/** The defaults of {@link BusHealthMetricsOptions}, applied by the `BusHealthMetrics` constructor. */
export const BUS_HEALTH_METRICS_DEFAULTS = Object.freeze({
  policy: DEFAULT_STREAM_POLICY,
  maxAgeMs: 5000,
  timeoutMs: 8000,
  concurrency: 32,
} satisfies Partial<BusHealthMetricsOptions>);

type StreamLabels = 'stream' | 'kind';
type GroupLabels = 'stream' | 'kind' | 'group';

interface GroupSample {
  pending: number;
  lag: number | null;
  oldestPendingS: number;
  consumers: number;
}

interface StreamSample {
  readonly stream: string;
  readonly kind: string;
  length: number;
  readonly groups: Map<string, GroupSample>;
}

/** The labels of a stream under a policy. */
function streamLabels(policy: StreamPolicy, name: string): { stream: string; kind: string } {
  return { stream: policy.metricStream?.(name) ?? name, kind: policy.describe?.(name)?.kind ?? 'other' };
}

/** Run `fn` over `items` with at most `limit` at once. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class BusHealthMetrics {
  private readonly up: Gauge;
  private readonly duration: Gauge;
  private readonly streamCount: Gauge<'kind'>;
  private readonly length: Gauge<StreamLabels>;
  private readonly deadLetters: Gauge<StreamLabels>;
  private readonly pending: Gauge<GroupLabels>;
  private readonly lag: Gauge<GroupLabels>;
  private readonly oldestPending: Gauge<GroupLabels>;
  private readonly consumers: Gauge<GroupLabels>;
  private readonly usedMemory: Gauge<'node'>;
  private readonly maxMemory: Gauge<'node'>;
  private readonly o: WithDefaults<BusHealthMetricsOptions, typeof BUS_HEALTH_METRICS_DEFAULTS>;
  private lastLookAt = 0;
  private inflight: Promise<void> | undefined;
  private failing = false;

  /**
   * Register the gauges on `registry`, read through `redis` (which the caller owns and closes). Returns
   * undefined when the registry has them already (another API server in the same process serves them).
   */
  static register(
    registry: Registry,
    redis: RedisClient,
    o: BusHealthMetricsOptions = {},
  ): BusHealthMetrics | undefined {
    if (registry.getSingleMetric('bus_health_up')) return undefined;
    return new BusHealthMetrics(registry, redis, o);
  }

  private constructor(
    registry: Registry,
    private readonly redis: RedisClient,
    options: BusHealthMetricsOptions,
  ) {
    this.o = withDefaults(BUS_HEALTH_METRICS_DEFAULTS, options);
    const registers = [registry];
    // Every gauge waits for the same look, so one scrape shows one consistent picture.
    const collect = (): Promise<void> => this.refresh();
    const s = ['stream', 'kind'] as const;
    const g = ['stream', 'kind', 'group'] as const;
    this.up = new Gauge({
      name: 'bus_health_up',
      help: '1 when the last look at Redis stream health succeeded, else 0',
      registers,
      collect,
    });
    this.duration = new Gauge({
      name: 'bus_health_duration_seconds',
      help: 'How long the last look at Redis stream health took',
      registers,
      collect,
    });
    this.streamCount = new Gauge({
      name: 'bus_health_streams',
      help: 'Streams seen per kind',
      labelNames: ['kind'],
      registers,
      collect,
    });
    this.length = new Gauge({
      name: 'bus_health_stream_length',
      help: 'XLEN of the stream (per-user streams summed under stream="<prefix>.*")',
      labelNames: s,
      registers,
      collect,
    });
    this.deadLetters = new Gauge({
      name: 'bus_health_dead_letters',
      help: 'Entries in the dead-letter stream dlq:{<stream>}',
      labelNames: s,
      registers,
      collect,
    });
    this.pending = new Gauge({
      name: 'bus_health_group_pending',
      help: 'Entries delivered to the consumer group and not acknowledged',
      labelNames: g,
      registers,
      collect,
    });
    this.lag = new Gauge({
      name: 'bus_health_group_lag',
      help: 'Entries not yet delivered to the consumer group',
      labelNames: g,
      registers,
      collect,
    });
    this.oldestPending = new Gauge({
      name: 'bus_health_group_oldest_pending_seconds',
      help: 'Idle time of the oldest pending entry of the consumer group (0 when none)',
      labelNames: g,
      registers,
      collect,
    });
    this.consumers = new Gauge({
      name: 'bus_health_group_consumers',
      help: 'Consumers in the consumer group',
      labelNames: g,
      registers,
      collect,
    });
    this.usedMemory = new Gauge({
      name: 'marketbus_redis_used_memory_bytes',
      help: 'Memory used by Redis (INFO memory used_memory), per master',
      labelNames: ['node'],
      registers,
      collect,
    });
    this.maxMemory = new Gauge({
      name: 'marketbus_redis_maxmemory_bytes',
      help: 'maxmemory of Redis (0 = no limit; at the limit writes fail: noeviction), per master',
      labelNames: ['node'],
      registers,
      collect,
    });
  }

  /** Take a look unless a recent one is at hand; never throws (a failure shows as `bus_health_up 0`). */
  refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    if (Date.now() - this.lastLookAt < this.o.maxAgeMs) return Promise.resolve();
    const run = async (): Promise<void> => {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new TimeoutError('bus health look', this.o.timeoutMs)),
            this.o.timeoutMs,
          );
        });
        const look = this.look();
        look.catch(() => undefined); // a late failure after the timeout is not unhandled
        const sample = await Promise.race([look, timeout]);
        this.publish(sample.streams, sample.deadLetters);
        for (const m of sample.memory) {
          this.usedMemory.set({ node: m.node }, m.usedBytes);
          this.maxMemory.set({ node: m.node }, m.maxBytes);
        }
        this.up.set(1);
        if (this.failing) this.o.log?.info('bus health readable again');
        this.failing = false;
      } catch (err) {
        // Old numbers would look current: drop them, and say the look failed.
        this.clearSeries();
        this.up.set(0);
        if (!this.failing) this.o.log?.warn({ err: errorMessage(err) }, 'bus health look failed');
        this.failing = true;
      } finally {
        clearTimeout(timer);
        this.duration.set((performance.now() - started) / 1000);
        this.lastLookAt = Date.now();
      }
    };
    this.inflight = run().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async look(): Promise<{
    streams: StreamSample[];
    deadLetters: Map<string, number>;
    memory: RedisMemorySample[];
  }> {
    const memory = await redisMemory(this.redis);
    const names = new Set<string>();
    for (const p of this.o.policy.patterns) {
      if (p === DEAD_LETTER_PATTERN) continue;
      for (const n of await scanStreams(this.redis, p)) names.add(n);
    }
    const dlqNames = await scanStreams(this.redis, DEAD_LETTER_PATTERN);
    const samples: StreamSample[] = [];
    await forEachLimit([...names], this.o.concurrency, async (name) => {
      const sample = await this.inspect(name);
      if (sample) samples.push(sample);
    });
    const deadLetters = new Map<string, number>();
    await forEachLimit(dlqNames, this.o.concurrency, async (dlq) => {
      const source = deadLetterSource(dlq);
      if (source !== null) deadLetters.set(source, await this.redis.xLen(dlq));
    });
    return { streams: samples, deadLetters, memory };
  }

  /** XLEN and XINFO GROUPS; the full inspection only when the stream has groups. */
  private async inspect(name: string): Promise<StreamSample | null> {
    const { stream, kind } = streamLabels(this.o.policy, name);
    const [length, groupsRaw] = await Promise.all([
      this.redis.xLen(name),
      sendCommand(this.redis, ['XINFO', 'GROUPS', name]),
    ]);
    const sample: StreamSample = { stream, kind, length, groups: new Map() };
    if (parseGroups(groupsRaw).length === 0) return sample;
    const h = await inspectStream(this.redis, name);
    if (!h) return null; // deleted in between
    sample.length = h.length;
    for (const grp of h.groups) {
      sample.groups.set(grp.name, {
        pending: grp.pending,
        lag: grp.lag,
        oldestPendingS: (grp.oldestPendingIdleMs ?? 0) / 1000,
        consumers: grp.consumers,
      });
    }
    return sample;
  }

  private clearSeries(): void {
    for (const m of [
      this.streamCount,
      this.length,
      this.deadLetters,
      this.pending,
      this.lag,
      this.oldestPending,
      this.consumers,
      this.usedMemory,
      this.maxMemory,
    ])
      m.reset();
  }

  private publish(samples: readonly StreamSample[], deadLetters: ReadonlyMap<string, number>): void {
    // Sum per label set first: per-user streams share one.
    const lengths = new Map<string, { kind: string; n: number }>();
    const kinds = new Map<string, number>();
    const grouped = new Map<string, { stream: string; kind: string; group: string; g: GroupSample }>();
    for (const s of samples) {
      kinds.set(s.kind, (kinds.get(s.kind) ?? 0) + 1);
      const l = lengths.get(s.stream);
      lengths.set(s.stream, { kind: s.kind, n: (l?.n ?? 0) + s.length });
      for (const [group, g] of s.groups) {
        const key = `${s.stream}\u0000${group}`;
        const acc = grouped.get(key);
        if (!acc) {
          grouped.set(key, { stream: s.stream, kind: s.kind, group, g: { ...g } });
          continue;
        }
        acc.g.pending += g.pending;
        acc.g.lag = acc.g.lag === null || g.lag === null ? null : acc.g.lag + g.lag;
        acc.g.oldestPendingS = Math.max(acc.g.oldestPendingS, g.oldestPendingS);
        acc.g.consumers += g.consumers;
      }
    }
    const dead = new Map<string, { kind: string; n: number }>();
    for (const [source, n] of deadLetters) {
      const { stream, kind } = streamLabels(this.o.policy, source);
      dead.set(stream, { kind, n: (dead.get(stream)?.n ?? 0) + n });
    }
    this.clearSeries();
    for (const [kind, n] of kinds) this.streamCount.set({ kind }, n);
    for (const [stream, { kind, n }] of lengths) this.length.set({ stream, kind }, n);
    for (const [stream, { kind, n }] of dead) this.deadLetters.set({ stream, kind }, n);
    for (const { stream, kind, group, g } of grouped.values()) {
      const labels = { stream, kind, group };
      this.pending.set(labels, g.pending);
      if (g.lag !== null) this.lag.set(labels, g.lag);
      this.oldestPending.set(labels, g.oldestPendingS);
      this.consumers.set(labels, g.consumers);
    }
  }
}
