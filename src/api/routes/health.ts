/**
 * Operations: `GET /healthz` (the process answers), `GET /readyz` (Redis PING and `SELECT 1` on the
 * database, each with a short timeout; 200 `{ status: "ok" }` or 503 `{ status: "unavailable" }`, the
 * reasons logged; an admin (src/api/auth/admin.ts) also gets `redis` and `db`, each `ok` or what failed),
 * `GET /metrics` (the process registry,
 * shared with feed and runner under `marketbus up`, plus the live relay's metrics) and
 * `GET /api/v1/live/metrics` (the live relay's metrics alone). All in Prometheus text format.
 */
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { errorMessage } from '../../util/errors.js';
import { isAdmin } from '../auth/admin.js';
import type { ApiContext } from '../context.js';
import { withTimeout } from '../http-errors.js';
import { pingRedis } from '../../bus/connection.js';

const CHECK_MS = 1500;

export function healthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/healthz', () => ({ status: 'ok' }));

  app.get('/readyz', async (req, reply) => {
    const [redis, db] = await Promise.allSettled([
      withTimeout(pingRedis(ctx.redis), CHECK_MS, 'Redis PING'),
      withTimeout(ctx.db.query('SELECT 1'), CHECK_MS, 'SELECT 1'),
    ]);
    const state = (r: PromiseSettledResult<unknown>): string =>
      r.status === 'fulfilled' ? 'ok' : errorMessage(r.reason);
    const ok = redis.status === 'fulfilled' && db.status === 'fulfilled';
    const details = { redis: state(redis), db: state(db) };
    if (!ok) ctx.log.warn(details, 'api not ready');
    // Raw dependency errors (hosts, ports, driver text) are for admins and the log only.
    const body = { status: ok ? 'ok' : 'unavailable', ...((await isAdmin(ctx, req)) ? details : {}) };
    return reply.code(ok ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_req, reply) => {
    // Merged at every scrape: services sharing the registry may register metrics after we start.
    const merged = Registry.merge([ctx.registry, ctx.liveRegistry]);
    return reply.header('content-type', merged.contentType).send(await merged.metrics());
  });
  app.get('/api/v1/live/metrics', async (_req, reply) =>
    reply.header('content-type', ctx.liveRegistry.contentType).send(await ctx.liveRegistry.metrics()),
  );
}
