import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GroupHealth } from './health.js';

/**
 * Prometheus metrics of the bus core. One instance per registry; components take it optionally, so a
 * library user without Prometheus pays nothing. Labels are the stream and group names.
 */
export class BusMetrics {
  readonly entriesRead: Counter<'stream' | 'group'>;
  readonly entriesAcked: Counter<'stream' | 'group'>;
  readonly entriesClaimed: Counter<'stream' | 'group'>;
  readonly entriesDeadLettered: Counter<'stream' | 'group' | 'reason'>;
  readonly handlerErrors: Counter<'stream' | 'group'>;
  readonly handlerDuration: Histogram<'group'>;
  readonly published: Counter<'stream'>;
  readonly publishDuplicates: Counter<'stream'>;
  readonly publishErrors: Counter<'stream'>;
  readonly streamLength: Gauge<'stream'>;
  readonly groupPending: Gauge<'stream' | 'group'>;
  readonly groupLag: Gauge<'stream' | 'group'>;
  readonly oldestPendingSeconds: Gauge<'stream' | 'group'>;

  constructor(readonly registry: Registry = new Registry()) {
    const r = [registry];
    const sg = ['stream', 'group'] as const;
    this.entriesRead = new Counter({
      name: 'bus_entries_read_total',
      help: 'Entries delivered to a consumer group handler',
      labelNames: sg,
      registers: r,
    });
    this.entriesAcked = new Counter({
      name: 'bus_entries_acked_total',
      help: 'Entries acknowledged (XACK) after their handler succeeded',
      labelNames: sg,
      registers: r,
    });
    this.entriesClaimed = new Counter({
      name: 'bus_entries_claimed_total',
      help: 'Entries reclaimed from idle consumers or retried',
      labelNames: sg,
      registers: r,
    });
    this.entriesDeadLettered = new Counter({
      name: 'bus_entries_dead_lettered_total',
      help: 'Entries moved to the dead-letter stream',
      labelNames: ['stream', 'group', 'reason'],
      registers: r,
    });
    this.handlerErrors = new Counter({
      name: 'bus_handler_errors_total',
      help: 'Handler invocations that threw',
      labelNames: sg,
      registers: r,
    });
    this.handlerDuration = new Histogram({
      name: 'bus_handler_duration_seconds',
      help: 'Handler run time per entry or batch',
      labelNames: ['group'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: r,
    });
    this.published = new Counter({
      name: 'bus_entries_published_total',
      help: 'Entries added by the producer',
      labelNames: ['stream'],
      registers: r,
    });
    this.publishDuplicates = new Counter({
      name: 'bus_publish_duplicates_total',
      help: 'Explicit IDs equal to or older than the stream top (no-op)',
      labelNames: ['stream'],
      registers: r,
    });
    this.publishErrors = new Counter({
      name: 'bus_publish_errors_total',
      help: 'Failed XADDs',
      labelNames: ['stream'],
      registers: r,
    });
    this.streamLength = new Gauge({
      name: 'bus_stream_length',
      help: 'XLEN of the stream at the last health check',
      labelNames: ['stream'],
      registers: r,
    });
    this.groupPending = new Gauge({
      name: 'bus_group_pending',
      help: 'Entries delivered but not acknowledged',
      labelNames: sg,
      registers: r,
    });
    this.groupLag = new Gauge({
      name: 'bus_group_lag',
      help: 'Entries not yet delivered to the group (-1 when Redis cannot tell)',
      labelNames: sg,
      registers: r,
    });
    this.oldestPendingSeconds = new Gauge({
      name: 'bus_group_oldest_pending_seconds',
      help: 'Idle time of the oldest pending entry',
      labelNames: sg,
      registers: r,
    });
  }

  /** Set the gauges from one health report. */
  recordHealth(stream: string, length: number, groupsHealth: readonly GroupHealth[]): void {
    this.streamLength.set({ stream }, length);
    for (const g of groupsHealth) {
      const l = { stream, group: g.name };
      this.groupPending.set(l, g.pending);
      this.groupLag.set(l, g.lag ?? -1);
      this.oldestPendingSeconds.set(l, (g.oldestPendingIdleMs ?? 0) / 1000);
    }
  }
}
