/**
 * Wiring of the API (`marketbus api`, and inside `marketbus up`): its Redis connection, the live relay,
 * sessions, chat links, the bot's name, command results, the backtest queue and bus health metrics are
 * built here and handed to the HTTP server (src/api/server.ts), which only registers routes on them.
 * One Redis command connection plus one for the relay's shared blocking read, whatever the number of
 * clients.
 */
import { withDefaults } from '../util/defaults.js';
import { Registry } from 'prom-client';
import {
  closeRedis,
  connectInBackground,
  createRedisClient,
  describeRedis,
  isCluster,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import { CATALOG_POLICY } from '../contracts/catalog.js';
import { BusHealthMetrics } from '../bus/health-metrics.js';
import { BacktestQueue } from '../backtest/queue.js';
import { ensureRedisCode } from './redis-code.js';
import { errorMessage } from '../util/errors.js';
import { BotUsername, ChatLinks } from '../api/auth/chat-link.js';
import { DevLoginLink } from '../api/auth/dev-login.js';
import { checkDevLogin } from '../api/auth/settings.js';
import { Authenticator, SessionStore } from '../api/auth/session.js';
import { CommandResults } from '../api/command-results.js';
import { apiSettingsFromEnv, isLoopbackHost, type ApiSettings } from '../api/config.js';
import type { ApiContext } from '../api/context.js';
import { DEFAULT_LIVE_LIMITS, type LiveClient, type LiveLimits } from '../api/live/client.js';
import { LiveHub, type LiveHubOptions } from '../api/live/hub.js';
import { LiveQuota } from '../api/live/quota.js';
import { LiveMetrics } from '../api/live/metrics.js';
import { RateCounter } from '../api/limits/rate-counter.js';
import { ApiServer, DEFAULT_API_PORT, defaultPublicDir } from '../api/server.js';
import { StreamsView } from '../api/streams-view.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { Logger } from '../util/log.js';
import { sleep } from '../util/sleep.js';
import { ServiceStack } from './stack.js';

export interface StartApiOptions {
  readonly redis: RedisConnectionOptions;
  /** The relational database (identity, strategies); already migrated; stays open. */
  readonly db: SqlExecutor;
  readonly log: Logger;
  /**
   * The process registry served on `/metrics` (`up` shares it with feed and runner).
   * @defaultValue a new registry
   */
  readonly registry?: Registry;
  /**
   * Listen address.
   * @defaultValue `127.0.0.1`
   */
  readonly host?: string;
  /**
   * TCP port; 0 = any free port (see `ApiService.port`).
   * @defaultValue 8000
   */
  readonly port?: number;
  /**
   * Secrets and identity settings.
   * @defaultValue read by `apiSettingsFromEnv()` (which throws ConfigError in a misconfigured production)
   */
  readonly settings?: ApiSettings;
  /**
   * Static files (the dashboard); null = none.
   * @defaultValue the directory `src/api/public` when it exists
   */
  readonly publicDir?: string | null;
  /**
   * Limits of the live WebSocket relay and options of its shared reader (XREAD BLOCK `blockMs`,
   * `rebuildIntervalMs`, the `served` instruments cache); they override `settings.live`.
   * @defaultValue those of `settings.live` (the `LIVE_*` variables), else `DEFAULT_LIVE_LIMITS` and `LIVE_HUB_DEFAULTS`
   */
  readonly live?: Partial<LiveLimits> & Pick<LiveHubOptions, 'blockMs' | 'rebuildIntervalMs' | 'served'>;
  /**
   * How long run/stop wait for the runner's answer before 202 `pending`, ms (0 = answer at once).
   * @defaultValue 2000
   */
  readonly commandWaitMs?: number;
  /**
   * On a Redis Cluster, how long the start waits for the first slot discovery before taking requests
   * (a cluster client refuses commands until then), ms.
   * @defaultValue 10000
   */
  readonly clusterDiscoveryWaitMs?: number;
}

/** The defaults of {@link StartApiOptions}, applied by `startApi`. */
export const START_API_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: DEFAULT_API_PORT,
  commandWaitMs: 2000,
  clusterDiscoveryWaitMs: 10_000,
} satisfies Partial<StartApiOptions>);

/** A running API; disposing it closes the HTTP server, then its collaborators, in reverse order. */
export interface ApiService extends AsyncDisposable {
  readonly server: ApiServer;
  /** `http://<host>:<port>`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /**
   * The one-time development sign-in URL (`<url>/auth/dev?token=...`) to print, or null when
   * development sign-in (`settings.devLogin`) is off.
   */
  readonly devLoginUrl: string | null;
  readonly liveMetrics: LiveMetrics;
  /** Connected WebSocket clients. */
  readonly liveClients: number;
  /** Same as `[Symbol.asyncDispose]()`. Idempotent. */
  close(): Promise<void>;
}

export async function startApi(opts: StartApiOptions): Promise<ApiService> {
  const o = withDefaults(START_API_DEFAULTS, opts);
  const settings = o.settings ?? apiSettingsFromEnv();
  const host = o.host;
  const log = o.log;
  const stack = new ServiceStack(log);
  const server = await stack.start(async () => {
    const redis = createRedisClient({ ...o.redis, clientName: 'marketbus-api' }, log);
    stack.defer('api redis', () => closeRedis(redis));
    // Not awaited: the API starts (and /readyz says 503) while Redis is down.
    const connected = connectInBackground(redis, log);
    // Checked once connected; a missing library is logged with its code (REDIS_CODE_NOT_LOADED).
    void connected
      .then(() => ensureRedisCode(redis, { bullmq: o.redis.cluster !== true }))
      .catch((err: unknown) => {
        if (redis.isOpen) log.error({ err: errorMessage(err) }, 'marketbus Redis functions not available');
      });
    if (isCluster(redis)) {
      const waited = new AbortController();
      await Promise.race([connected, sleep(o.clusterDiscoveryWaitMs, waited.signal)]);
      waited.abort(); // no timer left behind
    }
    const liveRegistry = new Registry();
    const liveMetrics = new LiveMetrics(liveRegistry);
    const live = withDefaults(settings.live, o.live ?? {});
    const hub = new LiveHub({
      redis,
      metrics: liveMetrics,
      log,
      blockMs: live.blockMs,
      rebuildIntervalMs: live.rebuildIntervalMs,
      served: live.served,
    });
    stack.defer('live relay', () => hub.close());
    // BullMQ has no cluster support on node-redis: there the backtest routes answer 501.
    const backtests = o.redis.cluster === true ? null : new BacktestQueue({ redis: o.redis, log });
    if (backtests) stack.defer('backtest queue', () => backtests.close());
    const results = new CommandResults(hub, log);
    stack.defer('command results', () => results.close());
    const limits = withDefaults(DEFAULT_LIVE_LIMITS, live);
    if (settings.devLogin) checkDevLogin(settings.production, 'devLogin');
    const sessions = new SessionStore(redis, {
      ttlS: settings.sessionTtlS,
      idleS: settings.sessionIdleS,
      maxPerUser: settings.maxSessionsPerUser,
    });
    const registry = o.registry ?? new Registry();
    const ctx: ApiContext = {
      settings,
      redis,
      db: o.db,
      log,
      auth: new Authenticator(sessions, settings.sessionTtlS),
      devLogin: settings.devLogin ? new DevLoginLink(settings.devLoginTtlS) : null,
      links: new ChatLinks(redis, settings.linkTtlS),
      bot: new BotUsername({
        username: settings.botUsername,
        token: settings.botToken,
        apiRoot: settings.telegramApiRoot,
        log,
      }),
      hub,
      results,
      liveMetrics,
      limits,
      liveQuota: new LiveQuota(limits),
      registry,
      liveRegistry,
      commandWaitMs: o.commandWaitMs,
      clients: new Set<LiveClient>(),
      streams: new StreamsView(redis, settings.server.streamsCacheMs),
      backtests,
      rateCounter: new RateCounter({ redis, registry, log }),
    };
    // Bus-wide stream health (pending, lag, dead letters) on /metrics, for alerts and dashboards.
    BusHealthMetrics.register(ctx.registry, redis, { log, policy: CATALOG_POLICY });
    hub.start();
    const http = await ApiServer.listen(ctx, {
      host,
      port: o.port,
      publicDir: o.publicDir === undefined ? defaultPublicDir() : o.publicDir,
    });
    stack.use(http, 'api http server');
    return http;
  });
  if (server.devLoginUrl !== null)
    log.warn(
      isLoopbackHost(host)
        ? 'development sign-in is on: a one-time sign-in link is printed on stderr'
        : // Browsers keep the Secure session cookie from plain http only on localhost/127.0.0.1.
          'development sign-in is on, and the API is not on loopback: open the link over HTTPS, or a browser drops the session cookie',
    );
  if (settings.sessionSecretGenerated)
    log.warn('SESSION_SECRET is not set: sessions are signed with a random key and end at restart');
  if (!settings.webhookSecret)
    log.info('TELEGRAM_WEBHOOK_SECRET is not set: /telegram/webhook is off (no chat confirmation)');
  log.info({ host, port: server.port, redis: describeRedis(o.redis) }, 'api listening');
  const close = (): Promise<void> => stack.close();
  return {
    server,
    url: server.url,
    host: server.host,
    port: server.port,
    devLoginUrl: server.devLoginUrl,
    liveMetrics: server.liveMetrics,
    get liveClients() {
      return server.liveClients;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
