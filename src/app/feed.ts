/**
 * Wiring of the feed service from config and command-line overrides; shared by `marketbus feed` and
 * `marketbus up`. Redis is best-effort here: the feed starts (and keeps ingesting) while Redis is down.
 */
import type { Registry } from 'prom-client';
import {
  closeRedis,
  connectInBackground,
  createRedisClient,
  describeRedis,
  passwordFromEnv,
  type RedisClient,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import { PRODUCER_DEFAULTS, StreamProducer } from '../bus/producer.js';
import { validateConfig } from '../config/load.js';
import { marketDataSchema, type MarketDataConfig, type SourceKind } from '../config/market-data.js';
import type { Logger } from '../util/log.js';
import { HistoryWriter } from '../history/writer.js';
import type { CandleStore } from '../history/store.js';
import { FeedMetrics } from '../marketdata/feed-metrics.js';
import { FeedService } from '../marketdata/feed.js';
import { createSources } from '../marketdata/source-factory.js';
import type { VenueSourceTuning } from '../marketdata/venues.js';
import type { Candle } from '../contracts/candle.js';
import type { RedisTarget } from './redis-target.js';
import { CATALOG_POLICY } from '../contracts/catalog.js';
import { ServiceStack } from './stack.js';

/** Command-line overrides of `market_data` (the feed's flags). */
export interface FeedOverrides {
  /** One source for every instrument; none = the config's `source`, or one per venue. */
  readonly source?: SourceKind | undefined;
  readonly instruments?: readonly string[] | undefined;
  readonly speed?: number | undefined;
  readonly replay?: string | undefined;
}

/** Merge flags into the raw `market_data` section, then validate (errors name `market_data.<key>`). */
export function resolveMarketData(raw: unknown, o: FeedOverrides): MarketDataConfig {
  const base = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const sources = (
    typeof base['sources'] === 'object' && base['sources'] !== null ? base['sources'] : {}
  ) as Record<string, Record<string, unknown> | undefined>;
  const merged: Record<string, unknown> = { ...base };
  const source = o.replay ? 'replay' : o.source;
  if (source) merged['source'] = source;
  if (o.instruments) merged['instruments'] = [...o.instruments];
  const nextSources: Record<string, unknown> = { ...sources };
  if (o.speed !== undefined) {
    // --speed belongs to the source that runs (simulated needs > 0; replay takes 0 = as fast as possible).
    const which = (merged['source'] ?? 'simulated') === 'replay' ? 'replay' : 'simulated';
    nextSources[which] = { ...sources[which], speed: o.speed };
  }
  if (o.replay)
    nextSources['replay'] = {
      ...(nextSources['replay'] as Record<string, unknown> | undefined),
      file: o.replay,
    };
  merged['sources'] = nextSources;
  return validateConfig(marketDataSchema, merged, 'market_data');
}

/**
 * Where the feed publishes. An explicit Redis (flag, env, or `market_data.live_feed.redis_streams`)
 * wins; a config file without that section disables publishing (a config that names no Redis for the feed means ingest-only); with no config file
 * at all the feed publishes to the command's Redis target.
 */
export function feedRedisOptions(
  md: MarketDataConfig,
  target: RedisTarget,
  hasConfigFile: boolean,
): RedisConnectionOptions | null {
  const rs = md.live_feed?.redis_streams;
  if (rs && !rs.enabled) return null;
  if (target.origin === 'flag' || target.origin === 'env') return target.options;
  if (rs) {
    const password = passwordFromEnv(rs.password_env, 'market_data.live_feed.redis_streams.password_env');
    return {
      host: rs.host,
      port: rs.port,
      db: rs.db,
      password,
      connectTimeoutMs: rs.connect_timeout_s * 1000,
      commandTimeoutMs: rs.socket_timeout_s * 1000,
    };
  }
  return hasConfigFile ? null : target.options;
}

export interface FeedRuntime extends AsyncDisposable {
  readonly feed: FeedService;
  readonly history: HistoryWriter | undefined;
  readonly redis: RedisClient | null;
  /** Same as `[Symbol.asyncDispose]()`: feed, history writer, source, Redis, in that order. Idempotent. */
  close(): Promise<void>;
}

export interface FeedOptions {
  /** The validated `market_data` section (see `resolveMarketData`). */
  readonly md: MarketDataConfig;
  /** Where to publish (see `feedRedisOptions`); null = publishing disabled. */
  readonly redis: RedisConnectionOptions | null;
  /** Gets the feed's and the history writer's metrics. */
  readonly registry: Registry;
  /** Where the feed, its source and its history writer log. */
  readonly log: Logger;
  /**
   * Extra consumers of every admitted closed candle; must not throw.
   * @defaultValue none
   */
  readonly candleSinks?: readonly ((c: Candle) => void)[] | undefined;
  /**
   * Every closed 1m candle is written here through a batching buffer (the history store is the truth: docs/contracts.md).
   * The store stays open when the feed closes (its owner closes it).
   * @defaultValue none (no history written)
   */
  readonly history?: CandleStore | undefined;
  /**
   * Source options beyond the config for every venue source: a test's or a bench's market clock and
   * timings (`now`, `lateGraceMs`, ...).
   * @defaultValue none (the sources' own defaults)
   */
  readonly sourceTuning?: VenueSourceTuning | undefined;
}

export async function startFeed(opts: FeedOptions): Promise<FeedRuntime> {
  const { md, log } = opts;
  const stack = new ServiceStack(log);
  return stack.start(async () => {
    const built = createSources(md, log, opts.sourceTuning);
    stack.defer('source', () => built.dispose());
    let redis: RedisClient | null = null;
    if (opts.redis) {
      const client = createRedisClient({ ...opts.redis, clientName: 'marketbus-feed' }, log);
      redis = client;
      stack.defer('feed redis', () => closeRedis(client));
      // Not awaited: a Redis that is down must not keep the feed from ingesting.
      void connectInBackground(client, log);
      log.info({ redis: describeRedis(opts.redis) }, 'feed publishes to Redis');
    } else {
      log.warn('publishing disabled: no market_data.live_feed.redis_streams section');
    }
    const writer = opts.history
      ? new HistoryWriter(opts.history, { registry: opts.registry, log })
      : undefined;
    if (writer) {
      writer.start();
      stack.defer('history writer', () => writer.close());
    }
    const sinks = [...(opts.candleSinks ?? []), ...(writer ? [(c: Candle) => writer.offer(c)] : [])];
    const rs = md.live_feed?.redis_streams;
    const maxLen1m = rs?.maxlen_approx ?? Math.round((rs?.retention_days ?? 7) * 1440);
    const feed = new FeedService({
      sources: built.sources,
      producer: redis
        ? new StreamProducer(redis, {
            policy: CATALOG_POLICY,
            timeoutMs: opts.redis?.commandTimeoutMs ?? PRODUCER_DEFAULTS.timeoutMs,
            waitReplicas: opts.redis?.waitReplicas ?? PRODUCER_DEFAULTS.waitReplicas,
          })
        : null,
      redis: redis ?? undefined,
      metrics: new FeedMetrics(opts.registry),
      log,
      priceSnapIntervalMs: md.price_snap_interval_seconds * 1000,
      statusIntervalMs: md.status_interval_seconds * 1000,
      staleAfterMs: md.stale_after_seconds * 1000,
      queueCapacity: md.queue_capacity,
      outboxCapacity: md.outbox_capacity,
      retention1m: { kind: 'maxlen', maxLen: maxLen1m },
      retention5m: { kind: 'maxlen', maxLen: Math.max(1, Math.ceil(maxLen1m / 5)) },
      candleSinks: sinks,
    });
    stack.defer('feed', () => feed.close());
    await feed.start(); // gate priming waits at most one command timeout when Redis is down
    return {
      feed,
      history: writer,
      redis,
      close: () => stack.close(),
      [Symbol.asyncDispose]: () => stack.close(),
    };
  });
}
