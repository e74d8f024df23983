/**
 * Sessions. A session is a random 256-bit token; the cookie `marketbus_session` carries it signed with
 * `SESSION_SECRET` (HttpOnly, SameSite=Lax, Path=/, Secure in production), and Redis keeps
 * `api:session:<sha256(token)>` -> user id with the session's TTL. Only the token's hash is stored, so
 * a copy of Redis holds no usable session; logout deletes the key, so a copied cookie dies with it.
 *
 * Development sign-in: when the server allows it (not production, no bot token, listening on loopback),
 * a request without a valid session is the local user (`ensureUser('local', 'local')`), but only when
 * it comes from a loopback address, to a loopback Host, with no proxy headers and no foreign Origin:
 * a web page elsewhere, DNS rebinding or a reverse proxy in front never get it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RedisClient } from '../../bus/connection.js';
import { ensureUser } from './identity-store.js';
import type { SqlExecutor } from '../../sql/executor.js';
import { isLoopbackHost } from '../config.js';
import { unauthorized, withTimeout } from '../http-errors.js';

export const SESSION_COOKIE = 'marketbus_session';
export const LOCAL_USER_ID = 'local';
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const REDIS_WAIT_MS = 2000;

/** `api:session:<sha256 hex of the token>`. */
export function sessionKey(token: string): string {
  return `api:session:${createHash('sha256').update(token).digest('hex')}`;
}

export class SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly ttlS: number,
  ) {}

  /** A new session of `userId`; returns its token. */
  async create(userId: string): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await withTimeout(
      this.redis.set(sessionKey(token), userId, { expiration: { type: 'EX', value: this.ttlS } }),
      REDIS_WAIT_MS,
      'session create',
    );
    return token;
  }

  /** The user of a live session, or null. */
  async userOf(token: string): Promise<string | null> {
    if (!TOKEN_RE.test(token)) return null;
    return withTimeout(this.redis.get(sessionKey(token)), REDIS_WAIT_MS, 'session lookup');
  }

  async destroy(token: string): Promise<void> {
    if (!TOKEN_RE.test(token)) return;
    await withTimeout(this.redis.del(sessionKey(token)), REDIS_WAIT_MS, 'session delete');
  }
}

export interface AuthUser {
  readonly id: string;
  /** Signed in by the development rule, not by a session. */
  readonly dev: boolean;
}

export interface AuthOptions {
  readonly sessions: SessionStore;
  readonly db: SqlExecutor;
  readonly production: boolean;
  readonly ttlS: number;
  /** The server allows development sign-in (decided once, from the settings and the listen address). */
  readonly devLogin: boolean;
}

export class Authenticator {
  private readonly resolved = new WeakMap<FastifyRequest, Promise<AuthUser | null>>();
  private localUser: Promise<string> | undefined;

  constructor(private readonly o: AuthOptions) {}

  get devLogin(): boolean {
    return this.o.devLogin;
  }

  get sessions(): SessionStore {
    return this.o.sessions;
  }

  /** The session token of the request's cookie when its signature is good, else null. */
  token(req: FastifyRequest): string | null {
    const raw = req.cookies[SESSION_COOKIE];
    if (!raw) return null;
    const r = req.unsignCookie(raw);
    return r.valid && r.value !== null ? r.value : null;
  }

  /** The signed-in user, or null (once per request). */
  user(req: FastifyRequest): Promise<AuthUser | null> {
    let p = this.resolved.get(req);
    if (!p) {
      p = this.resolve(req);
      this.resolved.set(req, p);
    }
    return p;
  }

  /** The signed-in user, or an ApiError 401. */
  async require(req: FastifyRequest): Promise<AuthUser> {
    const u = await this.user(req);
    if (!u) throw unauthorized();
    return u;
  }

  setCookie(reply: FastifyReply, token: string): void {
    void reply.setCookie(SESSION_COOKIE, token, {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      secure: this.o.production,
      path: '/',
      maxAge: this.o.ttlS,
    });
  }

  clearCookie(reply: FastifyReply): void {
    void reply.clearCookie(SESSION_COOKIE, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: this.o.production,
    });
  }

  private async resolve(req: FastifyRequest): Promise<AuthUser | null> {
    const token = this.token(req);
    if (token) {
      const id = await this.o.sessions.userOf(token);
      if (id) return { id, dev: false };
    }
    if (this.o.devLogin && devRequest(req)) return { id: await this.local(), dev: true };
    return null;
  }

  private local(): Promise<string> {
    this.localUser ??= ensureUser(this.o.db, LOCAL_USER_ID, 'local').then(
      (u) => u.id,
      (err: unknown) => {
        this.localUser = undefined;
        throw err;
      },
    );
    return this.localUser;
  }
}

/** A request from this machine, addressed to this machine, not relayed and not from a foreign page. */
export function devRequest(req: FastifyRequest): boolean {
  const h = req.headers;
  if (h['x-forwarded-for'] !== undefined || h.forwarded !== undefined || h['x-real-ip'] !== undefined)
    return false;
  if (!isLoopbackHost(req.socket.remoteAddress ?? '')) return false;
  if (!isLoopbackHost(hostnameOf(h.host ?? ''))) return false;
  const origin = h.origin;
  if (origin !== undefined) {
    try {
      if (!isLoopbackHost(new URL(origin).hostname)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** The host name of a Host header (`127.0.0.1:8000` -> `127.0.0.1`, `[::1]:80` -> `::1`). */
export function hostnameOf(host: string): string {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return '';
  }
}
