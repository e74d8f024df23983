import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { FeedState } from './types.js';

const STATES: readonly FeedState[] = ['STREAM', 'IDLE', 'DISCONNECTED', 'RECOVERING'];

/**
 * Metrics of the feed service. The four `redis_publish_*` names are public (docs/contracts.md §15).
 * What is about one source carries its name as the `source` label (one per venue); the queue, the
 * outbox, snapshots and publishing are the service's, shared by its sources.
 */
export class FeedMetrics {
  readonly publishTotal: Counter;
  readonly publishErrors: Counter;
  readonly publishDuplicates: Counter;
  readonly publishDuration: Histogram;
  readonly candlesReceived: Counter<'source' | 'origin' | 'timeframe'>;
  readonly ticksReceived: Counter<'source'>;
  readonly invalidInput: Counter<'source'>;
  readonly outboxDepth: Gauge;
  readonly outboxDropped: Counter;
  readonly snapshotsPublished: Counter;
  readonly snapshotErrors: Counter;
  readonly state: Gauge<'source' | 'state'>;
  readonly tickSilence: Gauge<'source'>;
  readonly instruments: Gauge<'source' | 'state'>;
  readonly queueDepth: Gauge;
  readonly queueEnqueued: Gauge;
  readonly queueProcessed: Gauge;
  readonly backpressureEvents: Gauge;
  readonly historyThrottled: Gauge<'source'>;
  readonly backoffSeconds: Gauge<'source'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.publishTotal = new Counter({
      name: 'redis_publish_total',
      help: 'Candles published to Redis Streams',
      registers,
    });
    this.publishErrors = new Counter({
      name: 'redis_publish_errors_total',
      help: 'Failed candle publishes (Redis trouble)',
      registers,
    });
    this.publishDuplicates = new Counter({
      name: 'redis_publish_duplicates_total',
      help: 'Duplicate or out-of-order candle IDs dropped (no-op)',
      registers,
    });
    this.publishDuration = new Histogram({
      name: 'redis_publish_duration_seconds',
      help: 'Latency of one candle publish batch',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5],
      registers,
    });
    this.candlesReceived = new Counter({
      name: 'feed_candles_received_total',
      help: 'Closed candles received from the source or built',
      labelNames: ['source', 'origin', 'timeframe'],
      registers,
    });
    this.ticksReceived = new Counter({
      name: 'feed_ticks_received_total',
      help: 'Ticks received from the source',
      labelNames: ['source'],
      registers,
    });
    this.invalidInput = new Counter({
      name: 'feed_invalid_input_total',
      help: 'Source messages dropped as invalid (never published)',
      labelNames: ['source'],
      registers,
    });
    this.outboxDepth = new Gauge({
      name: 'feed_publish_outbox_depth',
      help: 'Candles waiting to be published (grows while Redis is down)',
      registers,
    });
    this.outboxDropped = new Counter({
      name: 'feed_publish_outbox_dropped_total',
      help: 'Candles not published because the outbox was full',
      registers,
    });
    this.snapshotsPublished = new Counter({
      name: 'feed_price_snapshots_published_total',
      help: 'Price snapshots published',
      registers,
    });
    this.snapshotErrors = new Counter({
      name: 'feed_price_snapshot_errors_total',
      help: 'Price snapshots that failed to publish',
      registers,
    });
    this.state = new Gauge({
      name: 'feed_state',
      help: '1 for the current feed state, 0 for the others',
      labelNames: ['source', 'state'],
      registers,
    });
    this.tickSilence = new Gauge({
      name: 'feed_tick_silence_seconds',
      help: 'Seconds since the last tick of any instrument',
      labelNames: ['source'],
      registers,
    });
    this.instruments = new Gauge({
      name: 'feed_instruments',
      help: 'Instruments per state (ok, waiting, stale, stopped)',
      labelNames: ['source', 'state'],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'feed_supervisor_queue_depth',
      help: 'Events queued between source and sinks',
      registers,
    });
    this.queueEnqueued = new Gauge({
      name: 'feed_supervisor_enqueued',
      help: 'Events enqueued since start',
      registers,
    });
    this.queueProcessed = new Gauge({
      name: 'feed_supervisor_processed',
      help: 'Events processed since start',
      registers,
    });
    this.backpressureEvents = new Gauge({
      name: 'feed_supervisor_backpressure_events',
      help: 'Times the source had to wait for queue space',
      registers,
    });
    this.historyThrottled = new Gauge({
      name: 'feed_history_throttled',
      help: '1 while history calls are throttled',
      labelNames: ['source'],
      registers,
    });
    this.backoffSeconds = new Gauge({
      name: 'feed_backoff_seconds',
      help: 'Current reconnect or history backoff',
      labelNames: ['source'],
      registers,
    });
  }

  setState(source: string, current: FeedState): void {
    for (const s of STATES) this.state.set({ source, state: s }, s === current ? 1 : 0);
  }
}
