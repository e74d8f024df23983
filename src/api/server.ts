/**
 * The API's HTTP server (`marketbus api`, and inside `marketbus up`): identity, strategies, the live
 * WebSocket relay, health and metrics, and the dashboard's static files from `src/api/public/` when that
 * folder exists. It only registers plugins and routes on the collaborators it is given (`ApiContext`,
 * built by `startApi` in src/app/start-api.ts).
 *
 * Bad input never reaches a handler unchecked: bodies over 64 KiB are 413, malformed JSON 400, a
 * non-JSON body 415; state-changing requests (and WebSocket upgrades) whose `Origin` is not this host
 * are 403. Error bodies are `{ "error": "...", "code": "..." }`. A request head over the header limit
 * is 431 and a request not received within the request timeout 408 (src/api/server-settings.ts); every
 * answer carries the CSP and the other headers of src/api/security-headers.ts.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { Counter, Histogram } from 'prom-client';
import {
  errorMessage,
  MarketbusError,
  QuotaExceededError,
  StrategyInvalidError,
  type ErrorCode,
} from '../util/errors.js';
import type { ApiContext } from './context.js';
import { HTTP_ERRORS } from './error-status.js';
import { ApiError, StrategyCommandRefusedError } from './http-errors.js';
import { registerRateLimits } from './limits/rate-limits.js';
import type { LiveMetrics } from './live/metrics.js';
import { authRoutes } from './routes/auth.js';
import { backtestRoutes } from './routes/backtests.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { healthRoutes } from './routes/health.js';
import { liveRoutes } from './routes/live.js';
import { strategyRoutes } from './routes/strategies.js';
import { telegramWebhookRoutes } from './routes/telegram-webhook.js';
import { securityHeaders } from './security-headers.js';
import type { ResolvedServerLimits } from './server-settings.js';

export const BODY_LIMIT = 64 * 1024;
export const WS_MAX_PAYLOAD = 16 * 1024;
export const DEFAULT_API_PORT = 8000;

/** Where the HTTP server listens and what it serves besides the API. */
export interface ApiListenOptions {
  /** Listen address. */
  readonly host: string;
  /** TCP port; 0 = any free port (see `ApiServer.port`). */
  readonly port: number;
  /** Static files (the dashboard); null = none. */
  readonly publicDir: string | null;
}

/**
 * The dashboard's files: in a checkout `src/api/public` (so an edit shows without a build), in the
 * installed package the copy the build puts next to this file (`dist/api/public`, scripts/copy-public.mjs).
 */
export function defaultPublicDir(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [resolve(here, '../../src/api/public'), join(here, 'public')]) {
    if (existsSync(dir)) return dir;
  }
  return null;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export class ApiServer implements AsyncDisposable {
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

  /** The one-time development sign-in URL, or null when development sign-in is off. */
  get devLoginUrl(): string | null {
    return this.ctx.devLogin?.url(this.url) ?? null;
  }

  get liveMetrics(): LiveMetrics {
    return this.ctx.liveMetrics;
  }

  /** Connected WebSocket clients. */
  get liveClients(): number {
    return this.ctx.clients.size;
  }

  /**
   * Register the plugins and routes on the collaborators in `ctx` (built and owned by the caller:
   * `startApi` in src/app/start-api.ts) and listen. The caller starts the live relay and closes the
   * collaborators after `close()`.
   */
  static async listen(ctx: ApiContext, o: ApiListenOptions): Promise<ApiServer> {
    let app: FastifyInstance | undefined;
    try {
      app = await buildApp(ctx, o.publicDir);
      await app.listen({ host: o.host, port: o.port });
    } catch (err) {
      await app?.close().catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
        throw new MarketbusError(
          'PORT_IN_USE',
          `the API cannot listen on ${o.host}:${o.port}: the port is already in use (pass --port; 0 = any free port)`,
          { cause: err },
        );
      throw err;
    }
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : o.port;
    return new ApiServer(app, ctx, o.host, port);
  }

  /** Close WebSocket clients (1001) and the HTTP server; the collaborators stay open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of [...this.ctx.clients]) c.shutdown();
      await this.app.close();
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Fastify's options for the limits of src/api/server-settings.ts (what each one stops is said there). */
function serverOptions(l: ResolvedServerLimits) {
  return {
    requestTimeout: l.requestTimeoutMs,
    connectionTimeout: l.connectionTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    maxRequestsPerSocket: l.maxRequestsPerSocket,
    routerOptions: { maxParamLength: l.maxParamLength },
    http: {
      maxHeaderSize: l.maxHeaderBytes,
      // Node enforces requestTimeout only when it looks (every 30 s by default).
      connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(l.requestTimeoutMs / 4))),
      requestTimeout: l.requestTimeoutMs, // also bounds the head's own timeout (headersTimeout)
    },
  };
}

async function buildApp(ctx: ApiContext, publicDir: string | null): Promise<FastifyInstance> {
  const limits = ctx.settings.server;
  const { trustProxy } = ctx.settings.limits;
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    ...serverOptions(limits),
    // The client address (rate limits) is the socket's, or X-Forwarded-For's from a named proxy only.
    trustProxy: trustProxy.length > 0 ? [...trustProxy] : false,
  });
  app.server.maxConnections = limits.maxConnections;
  // First, so that every answer carries the headers, refusals of the hooks below included.
  await app.register(helmet, securityHeaders({ telegramWidget: ctx.settings.botToken !== undefined }));
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
    if (err instanceof QuotaExceededError)
      void reply.header('retry-after', String(ctx.settings.limits.quotaRetryAfterS));
    // The route pattern, never `req.url`: query strings (sign-in tokens) stay out of the logs.
    const route = req.routeOptions.url ?? 'unmatched';
    if (status >= 500 && status !== 503)
      ctx.log.error({ err: errorMessage(err), route, method: req.method }, 'api request failed');
    else if (status === 503) ctx.log.warn({ err: errorMessage(err), route }, 'api dependency unavailable');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((_req, reply) =>
    reply.code(HTTP_ERRORS.NOT_FOUND.status).send({ error: 'not found', code: HTTP_ERRORS.NOT_FOUND.code }),
  );
  await app.register(cookie, { secret: ctx.settings.sessionSecret });
  await app.register(websocket, { options: { maxPayload: WS_MAX_PAYLOAD } });
  await registerRateLimits(app, ctx);
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
    // A dependency's failure (its host, port, driver text) is logged, never sent.
    const error =
      m.show === 'internal'
        ? 'internal error'
        : m.show === 'unavailable'
          ? 'temporarily unavailable, try again'
          : err.message;
    const code = err instanceof StrategyCommandRefusedError ? err.bodyCode : m.code;
    const extra =
      err instanceof ApiError
        ? err.extra
        : err instanceof StrategyInvalidError
          ? { field: err.field }
          : err instanceof QuotaExceededError
            ? { quota: err.quota, limit: String(err.limit) }
            : {};
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
