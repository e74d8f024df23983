/**
 * The counters the soak turns into rates, read in one go from the three services' `/metrics` and from
 * Redis's INFO: a flat `name -> value` snapshot, so that the rate of anything is (b - a) / seconds.
 */
import { scrape } from './prom.js';
import { redisInfo, type Client } from './redis-stats.js';

export interface Endpoints {
  readonly feedMetrics: string;
  readonly runnerMetrics: string;
  readonly apiMetrics: string;
}

export type Counters = Readonly<Record<string, number>>;

export async function readCounters(e: Endpoints, redis: Client): Promise<Counters> {
  const [feed, runner, api, info] = await Promise.all([
    scrape(e.feedMetrics),
    scrape(e.runnerMetrics),
    scrape(e.apiMetrics),
    redisInfo(redis),
  ]);
  return {
    // Feed: candles (1m and 5m bars) and price snapshots published, the source's output, history rows.
    feed_candles_published: feed.sum('redis_publish_total'),
    feed_candles_1m_received: feed.sum('feed_candles_received_total', { timeframe: '1m' }),
    feed_publish_errors: feed.sum('redis_publish_errors_total'),
    feed_outbox_dropped: feed.sum('feed_publish_outbox_dropped_total'),
    feed_outbox_depth: feed.sum('feed_publish_outbox_depth'),
    feed_queue_depth: feed.sum('feed_supervisor_queue_depth'),
    feed_prices_published: feed.sum('feed_price_snapshots_published_total'),
    feed_price_errors: feed.sum('feed_price_snapshot_errors_total'),
    feed_ticks: feed.sum('feed_ticks_received_total'),
    feed_history_written: feed.sum('history_candles_written_total'),
    feed_history_errors: feed.sum('history_write_errors_total'),
    feed_history_dropped: feed.sum('history_candles_dropped_total'),
    feed_history_buffer_depth: feed.sum('history_write_buffer_depth'),
    // Runner: candles consumed (read, and acked after their outputs were written), steps, outputs.
    runner_candles_read: runner.sum('strategy_live_runner_messages_read_total'),
    runner_candles_acked: runner.sum('strategy_live_runner_messages_acked_total'),
    runner_steps: runner.sum('strategy_live_runner_iterations_total'),
    runner_step_errors: runner.sum('strategy_live_runner_iteration_errors_total'),
    runner_outputs: runner.sum('strategy_realtime_output_publish_total'),
    runner_output_errors: runner.sum('strategy_realtime_output_publish_errors_total'),
    // API: the live relay's reads and the messages it wrote to WebSocket clients.
    api_relay_entries_read: api.sum('live_relay_entries_read_total'),
    api_relay_xreads: api.sum('live_relay_xread_total'),
    api_ws_sent: api.sum('live_ws_messages_sent_total'),
    api_ws_clients: api.sum('live_ws_clients'),
    api_ws_disconnects: api.sum('live_ws_disconnects_total'),
    api_ws_queue_high_water_bytes: api.sum('live_ws_send_queue_high_water_bytes'),
    // Redis.
    redis_commands: info.total_commands_processed,
    redis_xadd_calls: info.calls['xadd'] ?? 0,
    redis_script_calls: (info.calls['evalsha'] ?? 0) + (info.calls['eval'] ?? 0),
    redis_xread_calls: info.calls['xread'] ?? 0,
    redis_xreadgroup_calls: info.calls['xreadgroup'] ?? 0,
    redis_used_memory: info.used_memory,
    redis_used_memory_rss: info.used_memory_rss,
  };
}

/** Per second between two snapshots; NaN when a counter is missing or the time is not positive. */
export function rate(a: Counters, b: Counters, name: string, seconds: number): number {
  const x = a[name];
  const y = b[name];
  return x === undefined || y === undefined || seconds <= 0 ? Number.NaN : (y - x) / seconds;
}
