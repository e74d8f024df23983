import { Command } from 'commander';
import { StreamConsumer } from '../../bus/consumer.js';
import { busHealth, describeFlag, type StreamReport } from '../../bus/bus-health.js';
import { trimOnce } from '../../bus/trimmer.js';
import { parseReadReply } from '../../bus/replies.js';
import { type RedisClient, duplicateRedis } from '../../bus/connection.js';
import { cliContext, parseNonNegativeInt, parsePositiveInt, untilSignal, withRedis } from '../context.js';
import { formatMs, formatTable } from '../table.js';
import { CATALOG_POLICY, catalogPolicy } from '../../contracts/catalog.js';

export function streamsCommand(): Command {
  const cmd = new Command('streams').description('inspect and read Redis streams');

  cmd
    .command('inspect')
    .description(
      'length, IDs, retention, groups, lag, pending, oldest pending age, consumers and dead letters of streams, with what is unhealthy flagged',
    )
    .option('--match <pattern>', 'glob pattern of stream names (SCAN MATCH)', '*')
    .option(
      '--sample-ms <ms>',
      'look twice this far apart to flag lag or pending that grows',
      parseNonNegativeInt('--sample-ms'),
      0,
    )
    .option('--json', 'print one JSON document instead of a table')
    .action(async (o: { match: string; json?: boolean; sampleMs: number }, c: Command) => {
      const ctx = cliContext(c);
      await withRedis(ctx, async (redis) => {
        const report = await busHealth(redis, {
          patterns: [o.match],
          sampleMs: o.sampleMs,
          policy: catalogPolicy(ctx.config.streams.retention),
        });
        process.stdout.write(
          o.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderInspect(report.streams)}\n`,
        );
      });
    });

  cmd
    .command('trim')
    .description("apply each catalog stream's retention now and remove consumers idle with nothing pending")
    .option(
      '--idle-consumer-ms <ms>',
      'remove consumers idle longer than this with no pending entries',
      parseNonNegativeInt('--idle-consumer-ms'),
      86_400_000,
    )
    .action(async (o: { idleConsumerMs: number }, c: Command) => {
      const ctx = cliContext(c);
      await withRedis(ctx, async (redis) => {
        const r = await trimOnce(redis, {
          idleConsumerMs: o.idleConsumerMs,
          policy: catalogPolicy(ctx.config.streams.retention),
        });
        process.stdout.write(
          `${r.streams} stream(s): ${r.trimmed} entries trimmed, ${r.consumersRemoved} idle consumer(s) removed\n`,
        );
      });
    });

  cmd
    .command('tail')
    .description(
      'print entries as JSON lines {"stream","id","fields"}; with --group, as a full group consumer that acks after printing',
    )
    .argument('<stream...>', 'stream names')
    .option('--group <group>', 'read through this consumer group (created at --from when missing)')
    .option('--consumer <name>', 'consumer name within the group (default <hostname>-<pid>)')
    .option('--from <id>', 'start ID: $ for new entries only, 0 for the whole stream, or an entry ID', '$')
    .option('--count <n>', 'stop after this many entries', parsePositiveInt('--count'))
    .option(
      '--claim-idle-ms <ms>',
      'with --group: reclaim entries other consumers left idle this long',
      parsePositiveInt('--claim-idle-ms'),
      60_000,
    )
    .action(async (streams: string[], o: TailOptions, c: Command) => {
      const ctx = cliContext(c);
      await withRedis(ctx, (redis) =>
        o.group ? tailGroup(redis, streams, o, o.group) : tailPlain(redis, streams, o),
      );
    });
  return cmd;
}

interface TailOptions {
  group?: string;
  consumer?: string;
  from: string;
  count?: number;
  claimIdleMs: number;
}

/** Write one line to stdout, waiting when its buffer is full (so a slow reader slows us, not our memory). */
async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`)) {
    await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  }
}

function entryLine(stream: string, id: string, fields: Readonly<Record<string, string>>): string {
  return JSON.stringify({ stream, id, fields });
}

async function tailPlain(redis: RedisClient, streams: readonly string[], o: TailOptions): Promise<void> {
  // `$` is resolved once to the current last IDs, so nothing added between two reads is missed.
  const last = new Map<string, string>();
  for (const s of streams) {
    if (o.from !== '$') last.set(s, o.from === '0' ? '0-0' : o.from);
    else {
      const top = await redis.xRevRange(s, '+', '-', { COUNT: 1 });
      last.set(s, top?.[0]?.id ?? '0-0');
    }
  }
  const reader = duplicateRedis(redis);
  reader.on('error', () => undefined);
  await reader.connect();
  let printed = 0;
  let stopping = false;
  void untilSignal().then(() => {
    stopping = true;
    reader.destroy();
  });
  try {
    while (!stopping && (o.count === undefined || printed < o.count)) {
      let reply: unknown;
      try {
        reply = await reader.xRead(
          streams.map((key) => ({ key, id: last.get(key) ?? '0-0' })),
          { BLOCK: 1000, COUNT: 100 },
        );
      } catch (err) {
        if (stopping) break;
        throw err;
      }
      for (const batch of parseReadReply(reply, 'XREAD')) {
        for (const e of batch.entries) {
          if (o.count !== undefined && printed >= o.count) break;
          await writeLine(entryLine(batch.stream, e.id, e.fields));
          last.set(batch.stream, e.id);
          printed++;
        }
      }
    }
  } finally {
    if (reader.isOpen) reader.destroy();
  }
}

async function tailGroup(
  redis: RedisClient,
  streams: readonly string[],
  o: TailOptions,
  group: string,
): Promise<void> {
  let printed = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const consumer = new StreamConsumer(redis, {
    policy: CATALOG_POLICY,
    group,
    streams,
    startId: o.from,
    claimMinIdleMs: o.claimIdleMs,
    consumer: o.consumer || undefined,
    maxInFlight: o.count,
    batchSize: o.count === undefined ? undefined : Math.min(100, o.count),
    handler: async (d) => {
      // Past --count the entry is left pending (not acked) for the group's next reader.
      if (o.count !== undefined && printed >= o.count) throw new Error('tail --count reached');
      await writeLine(entryLine(d.stream, d.id, d.fields));
      printed++;
      if (o.count !== undefined && printed >= o.count) done();
    },
  });
  await consumer.start();
  await Promise.race([finished, untilSignal()]);
  await consumer.close();
}

function renderInspect(reports: readonly StreamReport[]): string {
  if (reports.length === 0) return 'no streams match';
  const rows: string[][] = [];
  for (const r of reports) {
    const retention =
      r.retention === null
        ? '-'
        : r.retention.kind === 'maxlen'
          ? `~${r.retention.maxLen}`
          : formatMs(r.retention.maxAgeMs);
    const flags = r.flags.map(describeFlag).join('; ') || 'ok';
    const base = [
      r.stream,
      String(r.length),
      retention,
      r.lastEntryId ?? '-',
      r.deadLetters === null ? '-' : String(r.deadLetters),
    ];
    if (r.groups.length === 0) rows.push([...base, '-', '-', '-', '-', '-', flags]);
    for (const [i, g] of r.groups.entries()) {
      const cells = i === 0 ? base : base.map(() => '');
      rows.push([
        ...cells,
        g.name,
        g.lag === null ? '?' : `${g.lag}${g.lagCounted && g.lag >= 10_000 ? '+' : ''}`,
        String(g.pending),
        formatMs(g.oldestPendingIdleMs),
        g.consumerList.map((c) => `${c.name}(${c.pending}, idle ${formatMs(c.idleMs)})`).join(' ') || '-',
        i === 0 ? flags : '',
      ]);
    }
  }
  return formatTable(
    [
      'STREAM',
      'LENGTH',
      'RETENTION',
      'LAST',
      'DLQ',
      'GROUP',
      'LAG',
      'PENDING',
      'OLDEST',
      'CONSUMERS',
      'HEALTH',
    ],
    rows,
  );
}
