import { Command, InvalidArgumentError, Option } from 'commander';
import { readYaml } from '../../config/load.js';
import {
  MARKET_VENUES,
  sourcePlan,
  type MarketDataConfig,
  type SourceKind,
} from '../../config/market-data.js';
import { ConfigError } from '../../util/errors.js';
import { startStores, storeSelectionFromEnv } from '../../app/open-stores.js';
import { startMetrics } from '../../app/metrics-server.js';
import { runServices } from '../../app/stack.js';
import { sleep } from '../../util/sleep.js';
import { feedRedisOptions, resolveMarketData, startFeed, type FeedOverrides } from '../../app/feed.js';
import { serviceContext, untilSignal } from '../context.js';

const SOURCES: readonly SourceKind[] = ['simulated', 'replay', ...MARKET_VENUES];

export interface FeedFlags {
  fake?: boolean;
  source?: SourceKind;
  instruments?: string[];
  speed?: number;
  replay?: string;
}

/** Shared by `feed` and `up`: the feed's flags. */
export function addFeedOptions(cmd: Command): Command {
  return cmd
    .option('--fake', 'use the simulated source (same as --source simulated)')
    .addOption(
      new Option(
        '--source <name>',
        'one source for every instrument (default: one per venue of the instruments, sim keys simulated)',
      ).choices(SOURCES),
    )
    .option(
      '--instruments <keys>',
      'comma-separated instrument keys of any venue, e.g. sim:spot:BTCUSDT,binance:spot:BTCUSDT,okx:spot:BTC-USDT',
      (v: string) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
    )
    .option('--speed <n>', 'simulated/replay time factor (replay: 0 = as fast as possible)', (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('--speed must be a number >= 0.');
      return n;
    })
    .option('--replay <file>', 'replay candles or ticks from a CSV or JSON-lines file');
}

/**
 * Flags win over the environment (`MARKETBUS_SOURCE`, `MARKETBUS_INSTRUMENTS`, `MARKETBUS_SPEED`), which
 * wins over the config file.
 */
export function feedOverrides(f: FeedFlags, env: NodeJS.ProcessEnv = process.env): FeedOverrides {
  const envSource = env['MARKETBUS_SOURCE']?.trim();
  if (envSource && !(SOURCES as readonly string[]).includes(envSource)) {
    throw new ConfigError(
      'MARKETBUS_SOURCE',
      `expected one of ${SOURCES.join(', ')}, got ${JSON.stringify(envSource)}`,
    );
  }
  const envSpeed = env['MARKETBUS_SPEED']?.trim();
  if (envSpeed && !(Number(envSpeed) >= 0))
    throw new ConfigError('MARKETBUS_SPEED', `expected a number >= 0, got ${JSON.stringify(envSpeed)}`);
  const source = f.fake ? 'simulated' : (f.source ?? (envSource as FeedFlags['source']));
  const instruments =
    f.instruments ??
    env['MARKETBUS_INSTRUMENTS']
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const speed = f.speed ?? (envSpeed ? Number(envSpeed) : undefined);
  return {
    source: source || undefined,
    instruments: instruments && instruments.length > 0 ? instruments : undefined,
    speed,
    replay: f.replay || undefined,
  };
}

/** The sources the feed runs and their instruments, for a start banner: `binance (a, b), okx (c)`. */
export function describeSources(md: MarketDataConfig): string {
  return sourcePlan(md)
    .map((p) => `${p.kind} (${p.instruments.map((i) => i.key).join(', ')})`)
    .join(', ');
}

/** The raw `market_data` section of a config file (validated later, with the flags merged in). */
export function rawMarketData(file: string | undefined): unknown {
  if (!file) return {};
  const raw = readYaml(file);
  return typeof raw === 'object' && raw !== null
    ? (raw as Record<string, unknown>)['market_data']
    : undefined;
}

export function feedCommand(): Command {
  return addFeedOptions(
    new Command('feed').description(
      'run the market data feed: source -> candles, price snapshots and status on Redis Streams',
    ),
  )
    .option('--metrics-port <port>', 'Prometheus /metrics port (0 = none)', (v: string) => Number(v), 8001)
    .option(
      '--no-history',
      'do not write candles to the history store (CLICKHOUSE_URL, DATABASE_URL or embedded PGlite)',
    )
    .action(async (o: FeedFlags & { metricsPort: number; history: boolean }, c: Command) => {
      const { flags, config, log, target, registry } = serviceContext(c, 'feed');
      const md = resolveMarketData(rawMarketData(flags.config), feedOverrides(o));
      // Listened to from the start: a signal during the start stops right after it.
      const signal = untilSignal();
      await runServices(
        async (stack) => {
          if (o.metricsPort > 0) {
            const metrics = stack.use(
              await startMetrics({ registry, port: o.metricsPort }),
              'metrics server',
            );
            log.info({ port: metrics.port }, 'metrics on /metrics');
          }
          const stores = o.history
            ? stack.use(
                await startStores({ selection: storeSelectionFromEnv(config.data_dir), log }),
                'stores',
              )
            : undefined;
          return stack.use(
            await startFeed({
              md,
              redis: feedRedisOptions(md, target, Boolean(flags.config)),
              registry,
              log,
              history: stores?.candles,
            }),
            'feed',
          );
        },
        async (rt) => {
          // A replay ends by itself; live sources run until a signal.
          const stopped = new AbortController();
          const done = (async (): Promise<string> => {
            while (!rt.feed.finished && !stopped.signal.aborted) await sleep(200, stopped.signal);
            return 'replay finished';
          })();
          const why = await Promise.race([signal, done]);
          stopped.abort();
          log.info({ why }, 'shutting down');
        },
      );
    });
}
