/**
 * Metrics of the live relay (served alone on `/api/v1/live/metrics`, docs/contracts.md §14): the shared
 * stream reader (XREAD calls, errors, entries, rebuilds, streams read, XLEN of the market-data streams it
 * reads) and the WebSocket clients (connected, subscriptions, messages sent, disconnects by reason,
 * largest send queue seen).
 * Labels never carry user ids: per-user streams are counted by channel only.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export class LiveMetrics {
  readonly clients: Gauge;
  readonly subscriptions: Gauge;
  readonly sent: Counter<'channel'>;
  readonly disconnects: Counter<'reason'>;
  readonly errorsSent: Counter<'code'>;
  readonly queueHighWaterBytes: Gauge;
  readonly streams: Gauge;
  readonly xread: Counter;
  readonly xreadErrors: Counter;
  readonly entries: Counter<'channel'>;
  readonly rebuilds: Counter;
  readonly streamLength: Gauge<'stream'>;
  /** Set by the hub: the market-data streams it reads and their XLEN, asked at scrape time. */
  lengths: (() => Promise<readonly (readonly [string, number])[]>) | undefined;
  private queueHigh = 0;

  constructor(registry: Registry) {
    const registers = [registry];
    this.clients = new Gauge({ name: 'live_ws_clients', help: 'Connected WebSocket clients', registers });
    this.subscriptions = new Gauge({
      name: 'live_ws_subscriptions',
      help: 'Stream subscriptions of connected clients',
      registers,
    });
    this.sent = new Counter({
      name: 'live_ws_messages_sent_total',
      help: 'Stream entries sent to WebSocket clients',
      labelNames: ['channel'],
      registers,
    });
    this.disconnects = new Counter({
      name: 'live_ws_disconnects_total',
      help: 'WebSocket connections ended, by reason (client, slow_client, ping_timeout, flood, shutdown)',
      labelNames: ['reason'],
      registers,
    });
    this.errorsSent = new Counter({
      name: 'live_ws_errors_sent_total',
      help: 'Error messages sent to WebSocket clients, by code',
      labelNames: ['code'],
      registers,
    });
    this.queueHighWaterBytes = new Gauge({
      name: 'live_ws_send_queue_high_water_bytes',
      help: 'Largest per-client send queue seen, bytes (bounded by the configured limit)',
      registers,
    });
    this.streams = new Gauge({
      name: 'live_relay_streams',
      help: 'Streams read by the shared reader',
      registers,
    });
    this.xread = new Counter({
      name: 'live_relay_xread_total',
      help: 'XREAD calls of the shared reader',
      registers,
    });
    this.xreadErrors = new Counter({
      name: 'live_relay_xread_errors_total',
      help: 'Failed XREAD calls of the shared reader',
      registers,
    });
    this.entries = new Counter({
      name: 'live_relay_entries_read_total',
      help: 'Stream entries read by the shared reader',
      labelNames: ['channel'],
      registers,
    });
    this.rebuilds = new Counter({
      name: 'live_relay_reader_rebuilds_total',
      help: 'Blocked reads interrupted because the set of streams changed',
      registers,
    });
    this.streamLength = new Gauge({
      name: 'live_relay_stream_length',
      help: 'XLEN of the market-data streams the shared reader reads (per-user streams are not listed)',
      labelNames: ['stream'],
      registers,
      collect: async () => {
        this.streamLength.reset();
        for (const [stream, n] of (await this.lengths?.()) ?? []) this.streamLength.set({ stream }, n);
      },
    });
  }

  /** Record a client's queue size; the gauge keeps the largest. */
  noteQueueBytes(bytes: number): void {
    if (bytes <= this.queueHigh) return;
    this.queueHigh = bytes;
    this.queueHighWaterBytes.set(bytes);
  }

  get queueHighWater(): number {
    return this.queueHigh;
  }
}
