import { Counter, type Registry } from 'prom-client';

/** The runner's metrics, public names (docs/contracts.md §15); the Telegram ones live with the notifier. */
export class RunnerMetrics {
  readonly iterations: Counter;
  readonly iterationErrors: Counter;
  readonly messagesRead: Counter;
  readonly messagesAcked: Counter;
  readonly outputPublish: Counter<'stream_kind'>;
  readonly outputPublishErrors: Counter<'stream_kind'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.iterations = new Counter({
      name: 'strategy_live_runner_iterations_total',
      help: 'Strategy steps run (one candle for one run)',
      registers,
    });
    this.iterationErrors = new Counter({
      name: 'strategy_live_runner_iteration_errors_total',
      help: 'Strategy steps that failed',
      registers,
    });
    this.messagesRead = new Counter({
      name: 'strategy_live_runner_messages_read_total',
      help: 'Candles read from history and streams',
      registers,
    });
    this.messagesAcked = new Counter({
      name: 'strategy_live_runner_messages_acked_total',
      help: 'Candles processed and acknowledged (checkpointed)',
      registers,
    });
    this.outputPublish = new Counter({
      name: 'strategy_realtime_output_publish_total',
      help: 'Events and metrics published to per-user streams',
      labelNames: ['stream_kind'],
      registers,
    });
    this.outputPublishErrors = new Counter({
      name: 'strategy_realtime_output_publish_errors_total',
      help: 'Failed publishes to per-user streams',
      labelNames: ['stream_kind'],
      registers,
    });
  }
}
