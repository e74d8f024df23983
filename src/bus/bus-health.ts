/**
 * Bus-wide health (stream health and consumer lag in one look): every stream the policy's
 * patterns cover, with its length, retention, groups, lag, pending, oldest pending age and dead
 * letters, and flags for what is
 * unhealthy. "Growing" needs two looks: pass the previous report (or let `busHealth` take two samples
 * `sampleMs` apart).
 */
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { sleep } from '../util/sleep.js';
import type { RedisClient } from './connection.js';
import { inspectStream, scanStreams, type StreamHealth } from './health.js';
import { DEFAULT_STREAM_POLICY, type Retention, type StreamPolicy } from './stream-policy.js';

export type HealthFlag =
  | { readonly kind: 'dead-letters'; readonly count: number }
  | { readonly kind: 'lag-growing'; readonly group: string; readonly from: number; readonly to: number }
  | { readonly kind: 'pending-growing'; readonly group: string; readonly from: number; readonly to: number }
  | { readonly kind: 'pending-stuck'; readonly group: string; readonly oldestIdleMs: number }
  | {
      readonly kind: 'consumer-idle';
      readonly group: string;
      readonly consumer: string;
      readonly idleMs: number;
      readonly pending: number;
    };

export interface StreamReport extends StreamHealth {
  /** The policy's retention of the stream; null when it is never trimmed. */
  readonly retention: Retention | null;
  readonly flags: readonly HealthFlag[];
}

export interface BusHealthReport {
  readonly at: number;
  readonly streams: readonly StreamReport[];
  /** Streams with at least one flag. */
  readonly unhealthy: number;
}

export interface BusHealthOptions {
  /**
   * Gives each stream's retention and description, and the SCAN patterns.
   * @defaultValue `DEFAULT_STREAM_POLICY` (no retention except dead letters, pattern `*`)
   */
  readonly policy?: StreamPolicy;
  /**
   * SCAN glob patterns of the streams to report.
   * @defaultValue the policy's `patterns`
   */
  readonly patterns?: readonly string[];
  /**
   * An earlier report to compare against for the growing flags.
   * @defaultValue none
   */
  readonly previous?: BusHealthReport;
  /**
   * Without `previous`: take a first sample, wait this long, and compare, ms; 0: no growth flags.
   * @defaultValue 0
   */
  readonly sampleMs?: number;
  /**
   * Oldest pending entry older than this is `pending-stuck`, ms.
   * @defaultValue 300000
   */
  readonly stuckPendingMs?: number;
  /**
   * A consumer idle this long while holding pending entries is `consumer-idle`, ms.
   * @defaultValue 300000
   */
  readonly idleConsumerMs?: number;
}

/** The defaults of {@link BusHealthOptions}, applied by `busHealth`. */
export const BUS_HEALTH_DEFAULTS = Object.freeze({
  policy: DEFAULT_STREAM_POLICY,
  sampleMs: 0,
  stuckPendingMs: 300_000,
  idleConsumerMs: 300_000,
} satisfies Partial<BusHealthOptions>);

type ResolvedBusHealthOptions = WithDefaults<BusHealthOptions, typeof BUS_HEALTH_DEFAULTS>;

async function sample(
  client: RedisClient,
  patterns: readonly string[],
  policy: StreamPolicy,
): Promise<StreamHealth[]> {
  const names = new Set<string>();
  for (const p of patterns) for (const n of await scanStreams(client, p)) names.add(n);
  const out: StreamHealth[] = [];
  for (const n of [...names].sort()) {
    const h = await inspectStream(client, n, { policy });
    if (h) out.push(h);
  }
  return out;
}

export async function busHealth(
  client: RedisClient,
  options: BusHealthOptions = {},
): Promise<BusHealthReport> {
  const o = withDefaults(BUS_HEALTH_DEFAULTS, options);
  const policy = o.policy;
  const patterns = o.patterns ?? policy.patterns;
  let previous: readonly StreamHealth[] | undefined = o.previous?.streams;
  if (!previous && o.sampleMs > 0) {
    previous = await sample(client, patterns, policy);
    await sleep(o.sampleMs);
  }
  const now = await sample(client, patterns, policy);
  const before = new Map((previous ?? []).map((s) => [s.stream, s]));
  const streams = now.map((s) => report(s, before.get(s.stream), policy, o));
  return { at: Date.now(), streams, unhealthy: streams.filter((s) => s.flags.length > 0).length };
}

function report(
  s: StreamHealth,
  prev: StreamHealth | undefined,
  policy: StreamPolicy,
  o: ResolvedBusHealthOptions,
): StreamReport {
  const flags: HealthFlag[] = [];
  if ((s.deadLetters ?? 0) > 0) flags.push({ kind: 'dead-letters', count: s.deadLetters ?? 0 });
  const stuck = o.stuckPendingMs;
  const idle = o.idleConsumerMs;
  for (const g of s.groups) {
    const pg = prev?.groups.find((x) => x.name === g.name);
    if (pg && g.lag !== null && pg.lag !== null && g.lag > pg.lag)
      flags.push({ kind: 'lag-growing', group: g.name, from: pg.lag, to: g.lag });
    if (pg && g.pending > pg.pending)
      flags.push({ kind: 'pending-growing', group: g.name, from: pg.pending, to: g.pending });
    if ((g.oldestPendingIdleMs ?? 0) > stuck)
      flags.push({ kind: 'pending-stuck', group: g.name, oldestIdleMs: g.oldestPendingIdleMs ?? 0 });
    for (const c of g.consumerList) {
      if (c.pending > 0 && c.idleMs > idle)
        flags.push({
          kind: 'consumer-idle',
          group: g.name,
          consumer: c.name,
          idleMs: c.idleMs,
          pending: c.pending,
        });
    }
  }
  return { ...s, retention: policy.retention(s.stream), flags };
}

/** One short line per flag, for terminals and logs. */
export function describeFlag(f: HealthFlag): string {
  switch (f.kind) {
    case 'dead-letters':
      return `${f.count} dead letter(s)`;
    case 'lag-growing':
      return `lag of ${f.group} growing ${f.from} -> ${f.to}`;
    case 'pending-growing':
      return `pending of ${f.group} growing ${f.from} -> ${f.to}`;
    case 'pending-stuck':
      return `oldest pending of ${f.group} idle ${Math.round(f.oldestIdleMs / 1000)} s`;
    case 'consumer-idle':
      return `consumer ${f.consumer} of ${f.group} idle ${Math.round(f.idleMs / 1000)} s holding ${f.pending}`;
  }
}
