import { Command } from 'commander';
import { startStores, storeSelectionFromEnv } from '../../app/open-stores.js';
import { startMetrics } from '../../app/metrics-server.js';
import { runServices } from '../../app/stack.js';
import { startRunner } from '../../app/runner.js';
import { serviceContext, untilSignal } from '../context.js';

export function runnerCommand(): Command {
  return new Command('runner')
    .description(
      'run the strategy live runner: candles in, signals, per-user output streams and Telegram notices out',
    )
    .option('--metrics-port <port>', 'Prometheus /metrics port (0 = none)', (v: string) => Number(v), 9203)
    .option(
      '--instance <name>',
      'instance name (lease owner and consumer name); default <hostname>-<pid>-<random>',
    )
    .action(async (o: { metricsPort: number; instance?: string }, c: Command) => {
      const { config, log, target, registry } = serviceContext(c, 'runner');
      // Listened to from the start: a signal during the start stops right after it.
      const signal = untilSignal();
      await runServices(
        async (stack) => {
          const stores = stack.use(
            await startStores({ selection: storeSelectionFromEnv(config.data_dir), log }),
            'stores',
          );
          const metrics =
            o.metricsPort > 0
              ? stack.use(await startMetrics({ registry, port: o.metricsPort }), 'metrics server')
              : undefined;
          const rt = stack.use(
            await startRunner({
              redis: target.options,
              db: stores.db.sql,
              candles: stores.candles,
              registry,
              log,
              instanceId: o.instance || undefined,
            }),
            'runner',
          );
          log.info(
            { instance: rt.runner.instanceId, metrics: metrics?.port, notify: rt.notifier.mode },
            'runner up',
          );
        },
        async () => log.info({ signal: await signal }, 'shutting down'),
      );
    });
}
