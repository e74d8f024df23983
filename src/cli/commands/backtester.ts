import { Command, Option } from 'commander';
import { startBacktester } from '../../app/backtester.js';
import { startStores, storeSelectionFromEnv } from '../../app/open-stores.js';
import { runServices } from '../../app/stack.js';
import { parsePositiveInt, serviceContext, untilSignal } from '../context.js';

interface BacktesterFlags {
  concurrency: number;
  attempts: number;
  worker: boolean;
  service: boolean;
  instance?: string;
}

/**
 * `marketbus backtester`: the `backtesting` command service (`mgmt:backtesting:commands`) and backtest
 * workers on the `backtests` job queue (src/app/backtester.ts).
 */
export function backtesterCommand(): Command {
  return new Command('backtester')
    .description('run the backtesting service (mgmt:backtesting:commands) and backtest workers')
    .addOption(
      new Option('--concurrency <n>', 'backtests at once in this process')
        .argParser(parsePositiveInt('--concurrency'))
        .default(2),
    )
    .addOption(
      new Option('--attempts <n>', 'attempts per backtest before it fails')
        .argParser(parsePositiveInt('--attempts'))
        .default(3),
    )
    .option('--no-worker', 'serve commands and queue backtests, run none here')
    .option('--no-service', 'run queued backtests only, serve no commands')
    .option('--instance <name>', 'consumer name in backtesting.workers; default <hostname>-<pid>')
    .action(async (o: BacktesterFlags, c: Command) => {
      const { config, log, target } = serviceContext(c, 'backtester');
      // Listened to from the start: a signal during the start stops right after it.
      const signal = untilSignal();
      await runServices(
        async (stack) => {
          const stores = stack.use(
            await startStores({ selection: storeSelectionFromEnv(config.data_dir), log }),
            'stores',
          );
          stack.use(
            await startBacktester({
              redis: target.options,
              db: stores.db.sql,
              candles: stores.candles,
              log,
              concurrency: o.concurrency,
              attempts: o.attempts,
              worker: o.worker,
              service: o.service,
              instanceId: o.instance || undefined,
            }),
            'backtester',
          );
          log.info(
            { worker: o.worker, service: o.service, concurrency: o.concurrency, redis: target.origin },
            'backtester up',
          );
        },
        async () => log.info({ signal: await signal }, 'shutting down'),
      );
    });
}
