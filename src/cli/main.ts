#!/usr/bin/env node
/**
 * The `marketbus` command. Every subcommand takes `--redis URL` (default `REDIS_URL`) and `--config FILE`.
 * Errors print one line `marketbus: <message> [CODE]` (no stack trace); the exit code is
 * `EXIT_CODES[code]` (exit-codes.ts): 2 for bad config or arguments, 1 for other failures.
 */
import { Command, CommanderError } from 'commander';
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
import { backtesterCommand } from './commands/backtester.js';

/** The commands that run services: they end when nothing is left open, not by `process.exit`. */
const serviceCommands = new WeakSet<Command>();
/** The command whose action ran (set by the preAction hook), e.g. `up`, or `tail` under `streams`. */
let actionCommand: Command | undefined;

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
  for (const service of [upCommand(), feedCommand(), runnerCommand(), backtesterCommand(), apiCommand()]) {
    serviceCommands.add(service);
    program.addCommand(service);
  }
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
  program.hook('preAction', (_program, action) => {
    actionCommand = action;
  });
  return program;
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

// The services (`up`, `feed`, `runner`, `api`, `backtester`) end because nothing is left open: each
// closes what it started. Should a handle stay open anyway (a bug), it is named on stderr and the
// process ends after a grace period, instead of hanging or being hidden by an immediate exit.
// One-shot commands still exit at once (their clients' leftover reconnect timers and sockets).
process.exitCode = await main(process.argv);
if (actionCommand === undefined || !serviceCommands.has(actionCommand)) process.exit();
const lingering = setTimeout(() => {
  const open = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout');
  const err = new MarketbusError(
    'OPEN_HANDLES',
    `still open after the command finished: ${open.join(', ') || 'timers'}`,
  );
  process.stderr.write(`marketbus: ${err.message} [${err.code}]\n`);
  process.exit(process.exitCode === 0 ? 1 : process.exitCode);
}, 10_000);
lingering.unref();
