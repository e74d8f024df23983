import { Command, InvalidArgumentError, Option } from 'commander';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describeRedis } from '../../bus/connection.js';
import { createLogger } from '../../util/log.js';
import { startStores, storeSelectionFromEnv } from '../../app/open-stores.js';
import { startRunner } from '../../app/runner.js';
import { loadConfig } from '../../config/load.js';
import { feedRedisOptions, resolveMarketData, startFeed } from '../../app/feed.js';
import {
  EMBEDDED_REDIS_DEFAULTS,
  startEmbeddedRedis,
  resolveRedisTarget,
  wantsEmbeddedRedis,
  type RedisTarget,
} from '../../app/redis-target.js';
import { apiSettingsFromEnv } from '../../api/config.js';
import { startApi } from '../../app/start-api.js';
import { startTrimmer } from '../../app/trimmer.js';
import { startBacktester } from '../../app/backtester.js';
import { runServices } from '../../app/stack.js';
import type { MarketbusError } from '../../util/errors.js';
import { parsePositiveInt, untilSignal, type GlobalOptions } from '../context.js';
import { announceDevLogin, devLoginSettings, parsePort } from './api.js';
import { addFeedOptions, describeSources, feedOverrides, rawMarketData, type FeedFlags } from './feed.js';
import { catalogPolicy } from '../../contracts/catalog.js';

interface UpFlags extends FeedFlags {
  port: number;
  devLogin?: boolean;
  redisMaxRestarts: number;
  redisRestartWindow: number;
  redisMaxmemory: string;
}

/**
 * `marketbus up`: the whole system in one process on embedded defaults. With nothing configured it
 * starts a private redis-server (data under `.marketbus/redis`, restarted when it dies) and the
 * simulated feed; with `--redis`, `REDIS_URL` or a config `redis` section it uses that Redis instead.
 * Services start in order (Redis, stores, feed, runner, backtester, trimmer, API) and are closed in
 * reverse order on a signal, on an error, or when a later one fails to start.
 */
export function upCommand(): Command {
  return addFeedOptions(
    new Command('up').description(
      'run marketbus in one process on embedded defaults (a private redis-server unless REDIS_URL is set; the simulated feed unless --source or the instruments say otherwise)',
    ),
  )
    .option(
      '--port <port>',
      'HTTP port of the API, live WebSocket, dashboard and /metrics on 127.0.0.1 (0 = any free port)',
      parsePort,
      8000,
    )
    .option(
      '--dev-login',
      'development sign-in: print a one-time sign-in link at start (on by itself without TELEGRAM_BOT_TOKEN; refused in production)',
    )
    .addOption(
      new Option(
        '--redis-max-restarts <n>',
        'restarts of the embedded redis-server allowed within --redis-restart-window before up stops',
      )
        .argParser(parsePositiveInt('--redis-max-restarts'))
        .default(5),
    )
    .addOption(
      new Option('--redis-restart-window <seconds>', 'window over which embedded redis-server deaths count')
        .argParser(parsePositiveInt('--redis-restart-window'))
        .default(60),
    )
    .addOption(
      new Option(
        '--redis-maxmemory <size>',
        'maxmemory of the embedded redis-server (redis.conf units: 512mb, 2gb); noeviction: at the limit writes fail, nothing is evicted',
      )
        .argParser(parseMemorySize)
        .default(EMBEDDED_REDIS_DEFAULTS.maxmemory),
    )
    .action(async (o: UpFlags, c: Command) => {
      const flags = c.optsWithGlobals<GlobalOptions>();
      const config = loadConfig(flags.config);
      const md = resolveMarketData(rawMarketData(flags.config), feedOverrides(o));
      const log = createLogger('up');
      const apiSettings = devLoginSettings(apiSettingsFromEnv(), o.devLogin === true, log); // production without its secrets stops here
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      let embeddedFailed: Promise<MarketbusError> = new Promise(() => undefined);
      // Listened to from the start: a signal during the start stops right after it.
      const signal = untilSignal();
      await runServices(
        async (stack) => {
          let target: RedisTarget;
          let redisShown: string | undefined;
          if (wantsEmbeddedRedis(flags.redis, config.redis)) {
            const embedded = stack.use(
              await startEmbeddedRedis({
                dataDir: config.data_dir,
                log: createLogger('redis'),
                registry,
                maxRestarts: o.redisMaxRestarts,
                restartWindowMs: o.redisRestartWindow * 1000,
                maxmemory: o.redisMaxmemory,
              }),
              'embedded redis-server',
            );
            embeddedFailed = embedded.failed;
            target = { options: { url: embedded.authUrl }, origin: 'embedded' };
            redisShown = `${embedded.url} (password in ${embedded.passwordFile})`;
          } else {
            target = resolveRedisTarget({
              flag: flags.redis,
              section: config.redis,
              dataDir: config.data_dir,
            });
          }
          const stores = stack.use(
            await startStores({ selection: storeSelectionFromEnv(config.data_dir), log }),
            'stores',
          );
          stack.use(
            await startFeed({
              md,
              redis: feedRedisOptions(md, target, false),
              registry,
              log: createLogger('feed'),
              history: stores.candles,
            }),
            'feed',
          );
          const runner = stack.use(
            await startRunner({
              redis: target.options,
              db: stores.db.sql,
              candles: stores.candles,
              registry,
              log: createLogger('runner'),
            }),
            'runner',
          );
          // BullMQ has no cluster support on node-redis: on a cluster, up runs without backtests.
          if (target.options.cluster === true)
            log.warn('Redis Cluster: backtests are off (BullMQ needs a single Redis server)');
          else
            stack.use(
              await startBacktester({
                redis: target.options,
                db: stores.db.sql,
                candles: stores.candles,
                log: createLogger('backtester'),
              }),
              'backtester',
            );
          stack.use(
            await startTrimmer({
              redis: target.options,
              log: createLogger('trimmer'),
              trimmer: { policy: catalogPolicy(config.streams.retention) },
            }),
            'trimmer',
          );
          // Last: the API takes requests only once everything it fronts is running.
          const api = stack.use(
            await startApi({
              redis: target.options,
              db: stores.db.sql,
              log: createLogger('api'),
              registry,
              host: '127.0.0.1',
              port: o.port,
              settings: apiSettings,
            }),
            'api',
          );
          announceDevLogin(api.devLoginUrl, apiSettings);
          process.stderr.write(
            `marketbus is up: feed ${describeSources(md)}, ` +
              `Redis ${redisShown ?? describeRedis(target.options)}, db ${stores.db.kind}, history ${stores.candles.kind}, runner ${runner.runner.instanceId}, api ${api.url} (metrics ${api.url}/metrics). Ctrl+C stops.\n`,
          );
        },
        async () => {
          const why = await Promise.race([
            signal,
            embeddedFailed.then((err) => {
              throw err;
            }),
          ]);
          log.info({ signal: why }, 'stopping');
        },
        log,
      );
    });
}

/** A redis.conf memory size: bytes, or a number with kb, mb or gb (what `maxmemory` takes). */
function parseMemorySize(v: string): string {
  if (!/^[1-9][0-9]*(kb|mb|gb)?$/i.test(v))
    throw new InvalidArgumentError(`expected a size like 512mb, 2gb or bytes, got ${JSON.stringify(v)}`);
  return v.toLowerCase();
}
