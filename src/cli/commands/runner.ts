import { Command } from 'commander';
import { openStores, storeSelectionFromEnv } from '../../app/open-stores.js';
import { startMetricsServer } from '../../app/metrics-server.js';
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
      const stores = await openStores(storeSelectionFromEnv(config.data_dir), log);
      const metrics = o.metricsPort > 0 ? await startMetricsServer(registry, o.metricsPort) : undefined;
      const rt = await startRunner({
        redis: target.options,
        db: stores.db.sql,
        candles: stores.candles,
        registry,
        log,
        ...(o.instance ? { instanceId: o.instance } : {}),
      });
      log.info(
        { instance: rt.runner.instanceId, metrics: metrics?.port, notify: rt.notifier.mode },
        'runner up',
      );
      const sig = await untilSignal();
      log.info({ signal: sig }, 'shutting down');
      await rt.close();
      await stores.close();
      await metrics?.close();
    });
}
