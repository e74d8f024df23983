import { Command } from 'commander';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describeRedis } from '../../bus/connection.js';
import { createLogger } from '../../util/log.js';
import { openStores, storeSelectionFromEnv } from '../../app/open-stores.js';
import { startRunner } from '../../app/runner.js';
import { loadConfig } from '../../config/load.js';
import { feedRedisOptions, resolveMarketData, startFeed } from '../../app/feed.js';
import {
  startEmbeddedRedis,
  resolveRedisTarget,
  wantsEmbeddedRedis,
  type RedisTarget,
} from '../../app/redis-target.js';
import { apiSettingsFromEnv } from '../../api/config.js';
import { ApiServer } from '../../api/server.js';
import { runTrimmer } from '../../bus/trimmer.js';
import { startBacktester } from '../../app/backtester.js';
import { untilSignal, type GlobalOptions } from '../context.js';
import { parsePort } from './api.js';
import { addFeedOptions, feedOverrides, rawMarketData, type FeedFlags } from './feed.js';
import { catalogPolicy } from '../../contracts/catalog.js';

/**
 * `marketbus up`: the whole system in one process on embedded defaults. With nothing configured it
 * starts a private redis-server (data under `.marketbus/redis`) and the simulated feed; with `--redis`,
 * `REDIS_URL` or a config `redis` section it uses that Redis instead.
 */
export function upCommand(): Command {
  return addFeedOptions(
    new Command('up').description(
      'run marketbus in one process on embedded defaults (a private redis-server unless REDIS_URL is set; the simulated feed unless --source says otherwise)',
    ),
  )
    .option(
      '--port <port>',
      'HTTP port of the API, live WebSocket, dashboard and /metrics on 127.0.0.1 (0 = any free port)',
      parsePort,
      8000,
    )
    .action(async (o: FeedFlags & { port: number }, c: Command) => {
      const flags = c.optsWithGlobals<GlobalOptions>();
      const config = loadConfig(flags.config);
      const md = resolveMarketData(rawMarketData(flags.config), feedOverrides(o));
      const apiSettings = apiSettingsFromEnv(); // production without its secrets stops here
      const log = createLogger('up');
      const embedded = wantsEmbeddedRedis(flags.redis, config.redis)
        ? await startEmbeddedRedis(config.data_dir, log)
        : undefined;
      try {
        const target: RedisTarget = embedded
          ? { options: { url: embedded.server.url }, origin: 'embedded' }
          : resolveRedisTarget({ flag: flags.redis, section: config.redis, dataDir: config.data_dir });
        const registry = new Registry();
        collectDefaultMetrics({ register: registry });
        const stores = await openStores(storeSelectionFromEnv(config.data_dir), log);
        const http = await ApiServer.start({
          redis: target.options,
          db: stores.db.sql,
          log: createLogger('api'),
          registry,
          host: '127.0.0.1',
          port: o.port,
          settings: apiSettings,
        });
        const feed = await startFeed({
          md,
          redis: feedRedisOptions(md, target, false),
          registry,
          log: createLogger('feed'),
          history: stores.candles,
        });
        const runner = await startRunner({
          redis: target.options,
          db: stores.db.sql,
          candles: stores.candles,
          registry,
          log: createLogger('runner'),
        });
        // BullMQ has no cluster support on node-redis: on a cluster, up runs without backtests.
        const backtester =
          target.options.cluster === true
            ? null
            : await startBacktester({
                redis: target.options,
                db: stores.db.sql,
                candles: stores.candles,
                log: createLogger('backtester'),
              });
        if (!backtester) log.warn('Redis Cluster: backtests are off (BullMQ needs a single Redis server)');
        // Retention for streams that no longer get writes, and idle consumers removed (seed 001).
        const trimming = new AbortController();
        const trimmer = runTrimmer(runner.redis, trimming.signal, {
          log: createLogger('trimmer'),
          policy: catalogPolicy(config.streams.retention),
        });
        process.stderr.write(
          `marketbus is up: feed ${md.source} (${md.instruments.map((i) => i.key).join(', ')}), ` +
            `Redis ${describeRedis(target.options)}, db ${stores.db.kind}, history ${stores.candles.kind}, runner ${runner.runner.instanceId}, api ${http.url} (metrics ${http.url}/metrics). Ctrl+C stops.\n`,
        );
        const sig = await untilSignal();
        log.info({ signal: sig }, 'stopping');
        trimming.abort();
        await trimmer;
        await http.close();
        await backtester?.close();
        await runner.close();
        await feed.close();
        await stores.close();
      } finally {
        await embedded?.stop();
      }
    });
}
