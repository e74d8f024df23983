/**
 * `GET /api/v1/live/ws`: the live relay's WebSocket (protocol in `../live/protocol.ts`). The upgrade
 * needs a signed-in user (401 before the upgrade otherwise); the user's id comes from the session and
 * is the only way per-user streams are named, so no client can read another user's events.
 *
 * A user's connection slot (`LiveQuota`) is reserved before the upgrade and held by the TCP socket
 * until it closes or the client ends, so upgrades in progress count against `maxClientsPerUser`: N
 * parallel upgrades of one user open at most that many connections (429 for the others).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthUser } from '../auth/session.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../http-errors.js';
import { LiveClient } from '../live/client.js';
import type { Release } from '../live/quota.js';

export const LIVE_WS_PATH = '/api/v1/live/ws';

export function liveRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const admitted = new WeakMap<FastifyRequest, { user: AuthUser; slot: Release }>();
  app.get(
    LIVE_WS_PATH,
    {
      websocket: true,
      preValidation: async (req) => {
        const user = await ctx.auth.require(req);
        const slot = ctx.liveQuota.reserveConnection(user.id);
        if (!slot)
          throw new ApiError(
            'TOO_MANY_CONNECTIONS',
            `at most ${ctx.limits.maxClientsPerUser} live connections per user`,
          );
        // Whatever happens to the upgrade from here (refused, aborted, opened and later closed), the
        // slot is given back when its socket closes.
        req.raw.socket.once('close', slot);
        admitted.set(req, { user, slot });
      },
    },
    (socket, req) => {
      const a = admitted.get(req);
      if (!a) {
        socket.close(1008, 'not signed in');
        return;
      }
      const client = new LiveClient(socket, {
        hub: ctx.hub,
        redis: ctx.redis,
        metrics: ctx.liveMetrics,
        log: ctx.log,
        limits: ctx.limits,
        quota: ctx.liveQuota,
        userId: a.user.id,
        onClosed: (c) => {
          ctx.clients.delete(c);
          a.slot();
        },
      });
      ctx.clients.add(client);
      client.start();
    },
  );
}
