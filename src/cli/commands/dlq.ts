import { Command } from 'commander';
import {
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
  type DeadLetterQuery,
} from '../../bus/dead-letter.js';
import { cliContext, parsePositiveInt, withRedis } from '../context.js';
import { formatTable } from '../table.js';
import { CATALOG_POLICY } from '../../contracts/catalog.js';

interface DlqOptions {
  group?: string;
  count?: number;
  id?: string[];
  json?: boolean;
  to?: string;
}

export function dlqCommand(): Command {
  const cmd = new Command('dlq').description('dead letters of a stream: list, replay, purge');
  const common = (c: Command): Command =>
    c
      .argument('<stream>', 'the stream whose dead letters to use (not the dlq:{...} name)')
      .option('--group <group>', 'only dead letters of this consumer group')
      .option('--id <id...>', 'only these dead-letter IDs');

  common(cmd.command('list'))
    .description('list dead letters, oldest first')
    .option('--count <n>', 'most to list', parsePositiveInt('--count'), 100)
    .option('--json', 'JSON lines instead of a table')
    .action(async (stream: string, o: DlqOptions, c: Command) => {
      await withRedis(cliContext(c), async (redis) => {
        const letters = await listDeadLetters(redis, stream, query(o));
        if (o.json) {
          for (const d of letters) process.stdout.write(`${JSON.stringify(d)}\n`);
          return;
        }
        process.stdout.write(
          letters.length === 0
            ? `no dead letters for ${stream}\n`
            : `${formatTable(
                ['DLQ ID', 'ENTRY', 'GROUP', 'CONSUMER', 'DELIVERIES', 'REASON', 'FAILED AT', 'ERROR'],
                letters.map((d) => [
                  d.dlqId,
                  d.entryId,
                  d.group,
                  d.consumer,
                  String(d.deliveries),
                  d.reason,
                  d.failedAt,
                  d.error.slice(0, 80),
                ]),
              )}\n`,
        );
      });
    });

  common(cmd.command('replay'))
    .description('add dead letters back to their stream (new IDs) and remove them from the dead letters')
    .option('--to <stream>', 'add them to this stream instead')
    .action(async (stream: string, o: DlqOptions, c: Command) => {
      await withRedis(cliContext(c), async (redis) => {
        const n = await replayDeadLetters(redis, stream, {
          ...query(o),
          to: o.to || undefined,
          policy: CATALOG_POLICY,
        });
        process.stdout.write(`replayed ${n} dead letter(s) to ${o.to ?? stream}\n`);
      });
    });

  common(cmd.command('purge'))
    .description('delete dead letters')
    .action(async (stream: string, o: DlqOptions, c: Command) => {
      await withRedis(cliContext(c), async (redis) => {
        const n = await purgeDeadLetters(redis, stream, query(o));
        process.stdout.write(`purged ${n} dead letter(s) of ${stream}\n`);
      });
    });
  return cmd;
}

function query(o: DlqOptions): DeadLetterQuery {
  return {
    group: o.group || undefined,
    ids: o.id || undefined,
    count: o.count || undefined,
  };
}
