#!/usr/bin/env node
/**
 * The `marketbus` command. Every subcommand takes `--redis URL` (default `REDIS_URL`) and `--config FILE`.
 * Errors print one line `marketbus: <message> [CODE]` (no stack trace); the exit code is
 * `EXIT_CODES[code]` (exit-codes.ts): 2 for bad config or arguments, 1 for other failures.
 */
import { Command, CommanderError, Option } from 'commander';
import { MarketbusError, errorMessage } from '../util/errors.js';
import { BAD_INPUT, EXIT_CODES } from './exit-codes.js';
import { apiCommand } from './commands/api.js';
import { benchCommand } from './commands/bench.js';
import { dlqCommand } from './commands/dlq.js';
import { feedCommand } from './commands/feed.js';
import { historyCommand } from './commands/history.js';
import { redisCommand } from './commands/redis.js';
import { runnerCommand } from './commands/runner.js';
import { streamsCommand } from './commands/streams.js';
import { upCommand } from './commands/up.js';
import { loadConfig } from '../config/load.js';
import { openStores, storeSelectionFromEnv } from '../app/open-stores.js';
import { startBacktester } from '../app/backtester.js';
import { createLogger } from '../util/log.js';
import { resolveRedisTarget } from '../app/redis-target.js';
import { parsePositiveInt, untilSignal, type GlobalOptions } from './context.js';

export function buildProgram(): Command {
  const program = new Command('marketbus')
    .description('live market data to trading strategies over Redis Streams')
    .version('0.1.0')
    .option(
      '--redis <url>',
      'Redis URL (default: REDIS_URL, the config, the embedded server of `marketbus up`, redis://127.0.0.1:6379)',
    )
    .option('--config <file>', 'YAML config file')
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(upCommand());
  program.addCommand(feedCommand());
  program.addCommand(runnerCommand());
  program.addCommand(backtesterCommand());
  program.addCommand(apiCommand());
  program.addCommand(historyCommand());
  program.addCommand(streamsCommand());
  program.addCommand(dlqCommand());
  program.addCommand(redisCommand());
  program.addCommand(benchCommand());
  // addCommand() does not pass settings down: every command must throw instead of exiting.
  const inherit = (c: Command): void => {
    for (const sub of c.commands) {
      sub.exitOverride().showHelpAfterError();
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

/**
 * `marketbus backtester`: the `backtesting` command service (`mgmt:backtesting:commands`) and backtest
 * workers on the `backtests` job queue (src/jobs/backtester.ts).
 */
function backtesterCommand(): Command {
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
    .action(
      async (
        o: { concurrency: number; attempts: number; worker: boolean; service: boolean; instance?: string },
        c: Command,
      ) => {
        const flags = c.optsWithGlobals<GlobalOptions>();
        const config = loadConfig(flags.config);
        const log = createLogger('backtester');
        const target = resolveRedisTarget({
          flag: flags.redis,
          section: config.redis,
          dataDir: config.data_dir,
        });
        const stores = await openStores(storeSelectionFromEnv(config.data_dir), log);
        const bt = await startBacktester({
          redis: target.options,
          db: stores.db.sql,
          candles: stores.candles,
          log,
          concurrency: o.concurrency,
          attempts: o.attempts,
          worker: o.worker,
          service: o.service,
          ...(o.instance ? { instanceId: o.instance } : {}),
        });
        log.info(
          { worker: o.worker, service: o.service, concurrency: o.concurrency, redis: target.origin },
          'backtester up',
        );
        const sig = await untilSignal();
        log.info({ signal: sig }, 'shutting down');
        await bt.close();
        await stores.close();
      },
    );
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    return 0;
  } catch (err) {
    // Commander's usage errors (it printed them already): bad arguments.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : BAD_INPUT;
    if (err instanceof MarketbusError) {
      process.stderr.write(`marketbus: ${err.message} [${err.code}]\n`);
      return EXIT_CODES[err.code];
    }
    process.stderr.write(`marketbus: ${errorMessage(err)}\n`);
    return EXIT_CODES.INTERNAL;
  }
}

// Closed stdout (e.g. `| head`) ends the command quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
});

// Every command has finished its work when main resolves (long-running ones wait for a signal first),
// so leftover handles (reconnect timers, sockets) must not keep the process alive.
process.exit(await main(process.argv));
