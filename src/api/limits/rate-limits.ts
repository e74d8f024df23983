/**
 * The API's rate limits, with `@fastify/rate-limit` counting in Redis (`RateCounter`), applied by route
 * URL and method as routes are added, so route files need no rate-limit code:
 *
 * - sign-in (every route under `/auth/` whose path has `/login`, and `/auth/dev...`): at most
 *   `RATE_LIMIT_LOGIN_PER_MIN` requests per client address per minute;
 * - every other POST / PUT / PATCH / DELETE: at most `RATE_LIMIT_WRITES_PER_MIN` per signed-in user
 *   per minute (one budget for all writes), per client address when not signed in.
 *
 * The client address is the socket's peer; X-Forwarded-For counts only from a proxy named by
 * `TRUST_PROXY` (Fastify's `trustProxy`), so a client cannot pick its own address. IPv6 clients count
 * per /64 (one host usually holds a whole /64). Past the limit: 429 `{ error, code: "rate_limited" }`
 * with `Retry-After` (seconds to the end of the window).
 */
import rateLimit, { normalizeIP, type RateLimitOptions } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiContext } from '../context.js';
import { ApiError } from '../http-errors.js';

const WINDOW_MS = 60_000;
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A route that signs a client in: under `/auth/`, a `/login` path or development sign-in. */
export function isSignInRoute(url: string): boolean {
  return url.startsWith('/auth/') && (/\/login(\/|$)/.test(url) || url.startsWith('/auth/dev'));
}

/** The client address a limit counts by (IPv4, or the /64 of an IPv6 address). */
function clientOf(req: FastifyRequest): string {
  return normalizeIP(req.ip);
}

/** Add the limits to the routes registered after this; call before any route. */
export async function registerRateLimits(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const s = ctx.settings.limits;
  const counter = ctx.rateCounter;
  const limit = (name: string, max: number, key: RateLimitOptions['keyGenerator']): RateLimitOptions => ({
    max,
    timeWindow: WINDOW_MS,
    hook: 'onRequest',
    ...(key ? { keyGenerator: key } : {}),
    onExceeded: () => counter.refused.inc({ limit: name }),
  });
  const login = limit('login', s.loginPerMin, (req) => `login:${clientOf(req)}`);
  const writes = limit('writes', s.writesPerMin, async (req) => {
    // A session lookup that fails (Redis down) counts by address; the handler answers 503 anyway.
    const who = await ctx.auth.user(req).catch(() => null);
    return who ? `writes:user:${who.id}` : `writes:ip:${clientOf(req)}`;
  });
  // Before the plugin's own onRoute hook, which reads `config.rateLimit`.
  app.addHook('onRoute', (route) => {
    if (route.config?.rateLimit !== undefined) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const rule = isSignInRoute(route.url)
      ? login
      : methods.some((m) => WRITE_METHODS.has(m))
        ? writes
        : undefined;
    if (rule) route.config = { ...route.config, rateLimit: rule };
  });
  await app.register(rateLimit, {
    global: false,
    store: counter.storeClass(),
    // Fail open: a request whose count fails goes through (RateCounter logs and counts it).
    skipOnError: true,
    errorResponseBuilder: (_req, c) =>
      new ApiError('RATE_LIMITED', `too many requests: retry in ${Math.ceil(c.ttl / 1000)} s`),
  });
}
