/**
 * `GET /api/v1/live/ws`: the live relay's WebSocket (protocol in `../live/protocol.ts`). The upgrade
 * needs a signed-in user (401 before the upgrade otherwise); the user's id comes from the session and
 * is the only way per-user streams are named, so no client can read another user's events.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthUser } from '../auth/session.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../http-errors.js';
import { LiveClient } from '../live/client.js';

export const LIVE_WS_PATH = '/api/v1/live/ws';

export function liveRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const users = new WeakMap<FastifyRequest, AuthUser>();
  app.get(
    LIVE_WS_PATH,
    {
      websocket: true,
      preValidation: async (req) => {
        const user = await ctx.auth.require(req);
        let open = 0;
        for (const c of ctx.clients) if (c.userId === user.id) open++;
        if (open >= ctx.limits.maxClientsPerUser)
          throw new ApiError(
            'TOO_MANY_CONNECTIONS',
            `at most ${ctx.limits.maxClientsPerUser} live connections per user`,
          );
        users.set(req, user);
      },
    },
    (socket, req) => {
      const user = users.get(req);
      if (!user) {
        socket.close(1008, 'not signed in');
        return;
      }
      const client = new LiveClient(socket, {
        hub: ctx.hub,
        redis: ctx.redis,
        metrics: ctx.liveMetrics,
        log: ctx.log,
        limits: ctx.limits,
        userId: user.id,
        onClosed: (c) => ctx.clients.delete(c),
      });
      ctx.clients.add(client);
      client.start();
    },
  );
}
