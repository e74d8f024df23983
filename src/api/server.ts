/**
 * The API server (`marketbus api`, and inside `marketbus up`): identity, strategies, the live WebSocket
 * relay, health and metrics, and the dashboard's static files from `src/api/public/` when that folder
 * exists. One Redis command connection plus one for the relay's shared blocking read, whatever the
 * number of clients.
 *
 * Bad input never reaches a handler unchecked: bodies over 64 KiB are 413, malformed JSON 400, a
 * non-JSON body 415; state-changing requests (and WebSocket upgrades) whose `Origin` is not this host
 * are 403. Error bodies are `{ "error": "...", "code": "..." }`.
 */
import { dashboardRoutes } from './routes/dashboard.js';
import { backtestRoutes } from './routes/backtests.js';
import { BacktestQueue } from '../backtest/queue.js';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import {
  closeRedis,
  connectInBackground,
  createRedisClient,
  describeRedis,
  isCluster,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import { sleep } from '../util/sleep.js';
import { errorMessage, MarketbusError, StrategyInvalidError, type ErrorCode } from '../util/errors.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { Logger } from '../util/log.js';
import { BotUsername, ChatLinks } from './auth/chat-link.js';
import { Authenticator, SessionStore } from './auth/session.js';
import { CommandResults } from './command-results.js';
import { apiSettingsFromEnv, isLoopbackHost, type ApiSettings } from './config.js';
import type { ApiContext } from './context.js';
import { HTTP_ERRORS } from './error-status.js';
import { ApiError, StrategyCommandRefusedError } from './http-errors.js';
import { DEFAULT_LIVE_LIMITS, type LiveClient, type LiveLimits } from './live/client.js';
import { LiveHub } from './live/hub.js';
import { LiveMetrics } from './live/metrics.js';
import { BusHealthMetrics } from '../bus/health-metrics.js';
import { authRoutes } from './routes/auth.js';
import { healthRoutes } from './routes/health.js';
import { liveRoutes } from './routes/live.js';
import { strategyRoutes } from './routes/strategies.js';
import { telegramWebhookRoutes } from './routes/telegram-webhook.js';
import { CATALOG_POLICY } from '../contracts/catalog.js';

export const BODY_LIMIT = 64 * 1024;
export const WS_MAX_PAYLOAD = 16 * 1024;
export const DEFAULT_API_PORT = 8000;

export interface ApiServerOptions {
  readonly redis: RedisConnectionOptions;
  /** The relational database (identity, strategies); already migrated. */
  readonly db: SqlExecutor;
  readonly log: Logger;
  /** The process registry served on `/metrics` (`up` shares it with feed and runner). Default: a new one. */
  readonly registry?: Registry;
  /** Listen address. Default 127.0.0.1. */
  readonly host?: string;
  /** Port; 0 = any free port (see `ApiServer.port`). Default 8000. */
  readonly port?: number;
  /** Default: `apiSettingsFromEnv()` (throws ConfigError in a misconfigured production). */
  readonly settings?: ApiSettings;
  /** Static files; default `src/api/public` when it exists; null = none. */
  readonly publicDir?: string | null;
  readonly live?: Partial<LiveLimits> & { readonly blockMs?: number };
  /** How long run/stop wait for the runner's answer before 202 `pending`, ms. Default 2000. */
  readonly commandWaitMs?: number;
}

/** `src/api/public` next to this file, or found from `dist/api/` (tsc does not copy it). */
export function defaultPublicDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, 'public'), resolve(here, '../../src/api/public')]) {
    if (existsSync(dir)) return dir;
  }
  return null;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export class ApiServer {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly app: FastifyInstance,
    private readonly ctx: ApiContext,
    readonly host: string,
    readonly port: number,
  ) {}

  /** `http://<host>:<port>` (IPv6 hosts in brackets). */
  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Development sign-in is on (not production, no bot token, loopback). */
  get devLogin(): boolean {
    return this.ctx.auth.devLogin;
  }

  get liveMetrics(): LiveMetrics {
    return this.ctx.liveMetrics;
  }

  /** Connected WebSocket clients. */
  get liveClients(): number {
    return this.ctx.clients.size;
  }

  static async start(o: ApiServerOptions): Promise<ApiServer> {
    const settings = o.settings ?? apiSettingsFromEnv();
    const host = o.host ?? '127.0.0.1';
    const log = o.log;
    const redis = createRedisClient({ ...o.redis, clientName: 'marketbus-api' }, log);
    // Not awaited: the API starts (and /readyz says 503) while Redis is down.
    const connected = connectInBackground(redis, log);
    // A cluster client refuses commands until its first discovery (one server queues them): wait for
    // it, at most 10 s, so the first requests do not fail.
    if (isCluster(redis)) {
      const waited = new AbortController();
      await Promise.race([connected, sleep(10_000, waited.signal)]);
      waited.abort(); // no timer left behind
    }
    const liveRegistry = new Registry();
    const liveMetrics = new LiveMetrics(liveRegistry);
    const hub = new LiveHub({
      redis,
      metrics: liveMetrics,
      log,
      ...(o.live?.blockMs !== undefined ? { blockMs: o.live.blockMs } : {}),
    });
    const devLogin = !settings.production && !settings.botToken && isLoopbackHost(host);
    const ctx: ApiContext = {
      settings,
      redis,
      db: o.db,
      log,
      auth: new Authenticator({
        sessions: new SessionStore(redis, settings.sessionTtlS),
        db: o.db,
        production: settings.production,
        ttlS: settings.sessionTtlS,
        devLogin,
      }),
      links: new ChatLinks(redis, settings.linkTtlS),
      bot: new BotUsername({
        username: settings.botUsername,
        token: settings.botToken,
        apiRoot: settings.telegramApiRoot,
        log,
      }),
      hub,
      results: new CommandResults(hub, log),
      liveMetrics,
      limits: { ...DEFAULT_LIVE_LIMITS, ...o.live },
      registry: o.registry ?? new Registry(),
      liveRegistry,
      commandWaitMs: o.commandWaitMs ?? 2000,
      clients: new Set<LiveClient>(),
      backtests: o.redis.cluster === true ? null : new BacktestQueue({ redis: o.redis, log }),
    };
    // Bus-wide stream health (pending, lag, dead letters) on /metrics, for alerts and dashboards.
    BusHealthMetrics.register(ctx.registry, redis, { log, policy: CATALOG_POLICY });
    let app: FastifyInstance | undefined;
    try {
      app = await buildApp(ctx, o.publicDir === undefined ? defaultPublicDir() : o.publicDir);
      hub.start();
      await app.listen({ host, port: o.port ?? DEFAULT_API_PORT });
    } catch (err) {
      await app?.close().catch(() => undefined);
      await hub.close();
      await closeRedis(redis);
      throw err;
    }
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? DEFAULT_API_PORT);
    if (devLogin)
      log.warn('development sign-in is on: loopback requests without a session are the local user');
    if (settings.sessionSecretGenerated)
      log.warn('SESSION_SECRET is not set: sessions are signed with a random key and end at restart');
    if (!settings.webhookSecret)
      log.info('TELEGRAM_WEBHOOK_SECRET is not set: /telegram/webhook is off (no chat confirmation)');
    log.info({ host, port, redis: describeRedis(o.redis) }, 'api listening');
    return new ApiServer(app, ctx, host, port);
  }

  /** Close WebSocket clients (1001), the relay, the HTTP server and the Redis connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of [...this.ctx.clients]) c.shutdown();
      this.ctx.results.close();
      await this.ctx.backtests?.close();
      await this.ctx.hub.close();
      await this.app.close();
      await closeRedis(this.ctx.redis);
    })();
    return this.closing;
  }
}

async function buildApp(ctx: ApiContext, publicDir: string | null): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, return503OnClosing: true });
  // Reused when another ApiServer already registered them in a shared registry.
  const known = (name: string): unknown => ctx.registry.getSingleMetric(name);
  const oldRequests = known('api_http_requests_total');
  const requests =
    oldRequests instanceof Counter
      ? oldRequests
      : new Counter({
          name: 'api_http_requests_total',
          help: 'HTTP requests answered by the API, by method, route and status',
          labelNames: ['method', 'route', 'status'],
          registers: [ctx.registry],
        });
  const oldDuration = known('api_http_request_duration_seconds');
  const duration =
    oldDuration instanceof Histogram
      ? oldDuration
      : new Histogram({
          name: 'api_http_request_duration_seconds',
          help: 'HTTP request duration in the API, by route',
          labelNames: ['route'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
          registers: [ctx.registry],
        });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    duration.observe({ route }, reply.elapsedTime / 1000);
    // A refused WebSocket upgrade (401, 403, 404) owns a raw socket that nothing else will close.
    if (req.headers.upgrade?.toLowerCase() === 'websocket' && reply.statusCode !== 101) {
      const socket = req.raw.socket;
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    }
  });
  app.addHook('onRequest', (req, _reply, done) => {
    done(crossOrigin(req) ? new ApiError('CROSS_ORIGIN', 'cross-origin request refused') : undefined);
  });
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const { status, body } = errorBody(err);
    if (status >= 500 && status !== 503)
      ctx.log.error({ err: errorMessage(err), url: req.url, method: req.method }, 'api request failed');
    else if (status === 503)
      ctx.log.warn({ err: errorMessage(err), url: req.url }, 'api dependency unavailable');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((_req, reply) =>
    reply.code(HTTP_ERRORS.NOT_FOUND.status).send({ error: 'not found', code: HTTP_ERRORS.NOT_FOUND.code }),
  );
  await app.register(cookie, { secret: ctx.settings.sessionSecret });
  await app.register(websocket, { options: { maxPayload: WS_MAX_PAYLOAD } });
  if (publicDir) await app.register(fastifyStatic, { root: publicDir, prefix: '/', index: ['index.html'] });
  authRoutes(app, ctx);
  telegramWebhookRoutes(app, ctx);
  strategyRoutes(app, ctx);
  liveRoutes(app, ctx);
  healthRoutes(app, ctx);
  dashboardRoutes(app, ctx);
  backtestRoutes(app, ctx, ctx.backtests);
  return app;
}

/** A state-changing request or WebSocket upgrade from a page of another origin. */
function crossOrigin(req: FastifyRequest): boolean {
  const upgrade = req.headers.upgrade?.toLowerCase() === 'websocket';
  if (SAFE_METHODS.has(req.method) && !upgrade) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return false; // not a browser (curl, Telegram), or a same-origin GET
  try {
    return new URL(origin).host !== (req.headers.host ?? '');
  } catch {
    return true; // "null" and other opaque origins
  }
}

/** The status and body of an error: from `HTTP_ERRORS` by code for ours, from the framework's status for Fastify's. */
function errorBody(err: unknown): { status: number; body: Record<string, string> } {
  if (err instanceof MarketbusError) {
    const m = HTTP_ERRORS[err.code];
    const error =
      m.show === 'internal'
        ? 'internal error'
        : m.show === 'unavailable'
          ? `temporarily unavailable: ${err.message}`
          : err.message;
    const code = err instanceof StrategyCommandRefusedError ? err.bodyCode : m.code;
    const extra =
      err instanceof ApiError ? err.extra : err instanceof StrategyInvalidError ? { field: err.field } : {};
    return { status: m.status, body: { error, code, ...extra } };
  }
  // Fastify's own errors (body limit, bad JSON, content type) carry their HTTP status.
  const e = err as Partial<FastifyError>;
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 413)
    return {
      status,
      body: { error: `request body over ${BODY_LIMIT} bytes`, code: HTTP_ERRORS.PAYLOAD_TOO_LARGE.code },
    };
  if (status >= 400 && status < 500) {
    const code: ErrorCode =
      e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST';
    return { status, body: { error: e.message ?? 'bad request', code: HTTP_ERRORS[code].code } };
  }
  return {
    status: HTTP_ERRORS.INTERNAL.status,
    body: { error: 'internal error', code: HTTP_ERRORS.INTERNAL.code },
  };
}
