import { Command } from 'commander';
import { cliContext, parsePositiveInt } from '../context.js';

export function benchCommand(): Command {
  return new Command('bench')
    .description(
      'measure publish, consume+ack and latency of marketbus against the raw client, in one run on a private redis-server',
    )
    .option('--json', 'print one JSON object')
    .option('--entries <n>', 'entries published and consumed per run', parsePositiveInt('--entries'), 100_000)
    .option('--streams <n>', 'streams', parsePositiveInt('--streams'), 100)
    .option(
      '--latency-seconds <s>',
      'duration of the latency run at 5,000 entries/s',
      parsePositiveInt('--latency-seconds'),
      10,
    )
    .action(
      async (o: { json?: boolean; entries: number; streams: number; latencySeconds: number }, c: Command) => {
        const ctx = cliContext(c);
        // Loaded only for this command, so other commands start faster.
        const { runBusBench } = await import('../../bench/bus-bench.js');
        const result = await runBusBench({
          redisUrl: ctx.flags.redis || undefined,
          entries: o.entries,
          streams: o.streams,
          latencySeconds: o.latencySeconds,
          onProgress: (line) => process.stderr.write(`${line}\n`),
        });
        process.stdout.write(o.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
      },
    );
}
