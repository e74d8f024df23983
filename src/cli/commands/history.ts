import { Command, InvalidArgumentError, Option } from 'commander';
import { validateInstrumentKey } from '../../contracts/catalog.js';
import { loadConfig } from '../../config/load.js';
import { InvalidKeyError, InvalidRangeError } from '../../util/errors.js';
import { createLogger, type Logger } from '../../util/log.js';
import { backfill } from '../../history/backfill.js';
import { exportCandles, type ExportFormat } from '../../history/export.js';
import { findGaps } from '../../history/gaps.js';
import { openCandleStore, storeSelectionFromEnv } from '../../app/open-stores.js';
import type { CandleStore } from '../../history/store.js';
import { progressBar } from '../../marketdata/sources/replay/progress.js';
import { resolveMarketData } from '../../app/feed.js';
import { venueFor } from '../../marketdata/venues.js';
import { untilSignal, type GlobalOptions } from '../context.js';
import { formatTable } from '../table.js';
import { rawMarketData } from './feed.js';

/** An ISO-8601 time (`2026-02-10T12:00Z`, `2026-02-10`) or epoch milliseconds. */
export function parseTime(v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n))
    throw new InvalidArgumentError(`not a time: ${v} (use ISO-8601 like 2026-02-10T12:00Z, or epoch ms)`);
  return n;
}

const instrumentArg = (v: string): string => {
  try {
    return validateInstrumentKey(v);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof InvalidKeyError ? err.message : String(err));
  }
};

async function withStore<T>(c: Command, fn: (store: CandleStore, log: Logger) => Promise<T>): Promise<T> {
  const flags = c.optsWithGlobals<GlobalOptions>();
  const config = loadConfig(flags.config);
  const log = createLogger('history');
  const store = await openCandleStore(storeSelectionFromEnv(config.data_dir), log);
  try {
    return await fn(store, log);
  } finally {
    await store.close();
  }
}

function checkRange(from: number, to: number): void {
  if (from >= to)
    throw new InvalidRangeError(
      `--from (${new Date(from).toISOString()}) must be before --to (${new Date(to).toISOString()})`,
    );
}

/** Refuse an instrument the store has never seen, naming the ones it has. */
async function knownInstrument(store: CandleStore, key: string): Promise<void> {
  if (await store.bounds(key)) return;
  const known = await store.instruments();
  throw new InvalidKeyError(
    'instrument key',
    key,
    `no stored candles${known.length > 0 ? `; stored: ${known.slice(0, 10).join(', ')}` : ''}`,
  );
}

export function historyCommand(): Command {
  const cmd = new Command('history').description('the candle history store: gaps, backfill, export');

  cmd
    .command('gaps')
    .description('minutes missing between the first stored candle and now, per instrument')
    .option('--instrument <key>', 'only this instrument', instrumentArg)
    .option('--json', 'JSON lines instead of a table')
    .action(async (o: { instrument?: string; json?: boolean }, c: Command) => {
      await withStore(c, async (store) => {
        if (o.instrument) await knownInstrument(store, o.instrument);
        const keys = o.instrument ? [o.instrument] : await store.instruments();
        const rows: string[][] = [];
        for (const k of keys) {
          for (const g of await findGaps(store, k)) {
            if (o.json)
              process.stdout.write(
                `${JSON.stringify({ instrument_key: k, from: new Date(g.fromMs).toISOString(), to: new Date(g.toMs).toISOString(), minutes: g.minutes })}\n`,
              );
            else
              rows.push([
                k,
                new Date(g.fromMs).toISOString(),
                new Date(g.toMs).toISOString(),
                String(g.minutes),
              ]);
          }
        }
        if (!o.json)
          process.stdout.write(
            rows.length === 0
              ? 'no gaps\n'
              : `${formatTable(['INSTRUMENT', 'FROM', 'TO (EXCL.)', 'MINUTES'], rows)}\n`,
          );
      });
    });

  cmd
    .command('backfill')
    .description(
      "fill a range from the venue's REST history (binance, bybit, okx; URLs from market_data.sources.<venue>) under the feed's rate limit; rows are tagged source=rest",
    )
    .requiredOption(
      '--instrument <key>',
      'instrument key of any venue, e.g. binance:spot:BTCUSDT, bybit:linear:BTCUSDT, okx:spot:BTC-USDT',
      instrumentArg,
    )
    .requiredOption('--from <time>', 'first minute (ISO-8601 or epoch ms)', parseTime)
    .requiredOption('--to <time>', 'end, exclusive (ISO-8601 or epoch ms)', parseTime)
    .action(async (o: { instrument: string; from: number; to: number }, c: Command) => {
      checkRange(o.from, o.to);
      const flags = c.optsWithGlobals<GlobalOptions>();
      const md = resolveMarketData(rawMarketData(flags.config), {});
      const venue = venueFor(o.instrument);
      // The instrument's market_id when the config lists it (the candles carry it).
      const marketId = md.instruments.find((i) => i.key === o.instrument)?.market_id;
      await withStore(c, async (store, log) => {
        const ac = new AbortController();
        void untilSignal().then(() => ac.abort());
        const bar = progressBar(`backfill ${o.instrument}`);
        const r = await venue.withAdapter(md, (adapter, urls) =>
          backfill({
            store,
            instrumentKey: o.instrument,
            marketId,
            fromMs: o.from,
            toMs: o.to,
            adapter,
            urls,
            maxHistoryCallsPerMin: md.max_history_calls_per_min,
            onProgress: bar,
            signal: ac.signal,
            log,
          }),
        );
        bar.stop();
        process.stdout.write(
          `backfill ${r.outcome}: ${r.written} candle(s) written${r.reason ? ` (${r.reason})` : ''}\n`,
        );
        if (r.outcome === 'failed') process.exitCode = 1;
      });
    });

  cmd
    .command('export')
    .description('stored 1m candles of a range as CSV or JSON lines on stdout')
    .requiredOption('--instrument <key>', 'instrument key', instrumentArg)
    .requiredOption('--from <time>', 'first minute (ISO-8601 or epoch ms)', parseTime)
    .requiredOption('--to <time>', 'end, exclusive (ISO-8601 or epoch ms)', parseTime)
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'jsonl']).default('csv'))
    .action(async (o: { instrument: string; from: number; to: number; format: ExportFormat }, c: Command) => {
      checkRange(o.from, o.to);
      await withStore(c, async (store) => {
        await knownInstrument(store, o.instrument);
        const n = await exportCandles(store, o.instrument, o.from, o.to, o.format, (chunk) =>
          process.stdout.write(chunk)
            ? undefined
            : new Promise<void>((r) => process.stdout.once('drain', () => r())),
        );
        process.stderr.write(`exported ${n} candle(s)\n`);
      });
    });
  return cmd;
}
