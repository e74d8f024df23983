/**
 * Bus-wide health (seed 001's check_stream_health / check_consumer_lag): every catalog stream with its
 * length, retention, groups, lag, pending, oldest pending age and dead letters, and flags for what is
 * unhealthy. "Growing" needs two looks: pass the previous report (or let `busHealth` take two samples
 * `sampleMs` apart).
 */
import { sleep } from '../util/sleep.js';
import { CATALOG_PATTERNS, DEFAULT_RETENTION, describeStream, type Retention } from '../contracts/catalog.js';
import type { RedisClient } from './connection.js';
import { inspectStream, scanStreams, type StreamHealth } from './health.js';

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
  /** SCAN patterns. Default: every catalog pattern. */
  readonly patterns?: readonly string[];
  /** An earlier report to compare against for the growing flags. */
  readonly previous?: BusHealthReport;
  /** Without `previous`: take a first sample, wait this long, and compare. Default 0 (no growth flags). */
  readonly sampleMs?: number;
  /** Oldest pending entry older than this is `pending-stuck`, ms. Default 300000. */
  readonly stuckPendingMs?: number;
  /** A consumer idle this long while holding pending entries is `consumer-idle`, ms. Default 300000. */
  readonly idleConsumerMs?: number;
  /** Retention overrides per catalog kind (as configured). */
  readonly retention?: Partial<Record<keyof typeof DEFAULT_RETENTION, Retention>>;
}

async function sample(client: RedisClient, patterns: readonly string[]): Promise<StreamHealth[]> {
  const names = new Set<string>();
  for (const p of patterns) for (const n of await scanStreams(client, p)) names.add(n);
  const out: StreamHealth[] = [];
  for (const n of [...names].sort()) {
    const h = await inspectStream(client, n);
    if (h) out.push(h);
  }
  return out;
}

export async function busHealth(client: RedisClient, o: BusHealthOptions = {}): Promise<BusHealthReport> {
  const patterns = o.patterns ?? CATALOG_PATTERNS;
  let previous: readonly StreamHealth[] | undefined = o.previous?.streams;
  if (!previous && (o.sampleMs ?? 0) > 0) {
    previous = await sample(client, patterns);
    await sleep(o.sampleMs ?? 0);
  }
  const now = await sample(client, patterns);
  const before = new Map((previous ?? []).map((s) => [s.stream, s]));
  const streams = now.map((s) => report(s, before.get(s.stream), o));
  return { at: Date.now(), streams, unhealthy: streams.filter((s) => s.flags.length > 0).length };
}

function report(s: StreamHealth, prev: StreamHealth | undefined, o: BusHealthOptions): StreamReport {
  const flags: HealthFlag[] = [];
  if ((s.deadLetters ?? 0) > 0) flags.push({ kind: 'dead-letters', count: s.deadLetters ?? 0 });
  const stuck = o.stuckPendingMs ?? 300_000;
  const idle = o.idleConsumerMs ?? 300_000;
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
  const entry = describeStream(s.stream);
  const retention = entry ? (o.retention?.[entry.kind] ?? entry.retention) : null;
  return { ...s, retention, flags };
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
