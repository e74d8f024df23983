/**
 * What the dashboard needs besides the REST routes and the relay: the bus health table, and the
 * chart library served from its npm package (no build step, no copy in the repository).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { isAdmin } from '../auth/admin.js';
import type { ApiContext } from '../context.js';

/** The package's standalone build sits next to its ESM entry (its `exports` hide the dist path). */
function chartLibraryPath(): string {
  return join(
    dirname(fileURLToPath(import.meta.resolve('lightweight-charts'))),
    'lightweight-charts.standalone.production.js',
  );
}

let chartLibrary: Promise<Buffer> | undefined;

export function dashboardRoutes(app: FastifyInstance, ctx: ApiContext): void {
  /**
   * Catalog streams with groups, lag, pending, dead letters and health flags (signed-in users): the
   * market data streams and the caller's own; every stream for an admin (src/api/streams-view.ts).
   */
  app.get('/api/v1/streams', async (req) => {
    const who = await ctx.auth.require(req);
    return ctx.streams.forUser(who.id, await isAdmin(ctx, req));
  });

  app.get('/vendor/lightweight-charts.js', async (_req, reply) => {
    chartLibrary ??= readFile(chartLibraryPath());
    return reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=86400')
      .send(await chartLibrary);
  });
}
