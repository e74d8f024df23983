/**
 * Sessions. A session is a random 256-bit token; the cookie `__Host-marketbus_session` carries it signed
 * with `SESSION_SECRET` (HttpOnly, SameSite=Lax, Secure, Path=/, no Domain: the `__Host-` prefix makes
 * browsers refuse it otherwise, so no sibling domain and no plain-HTTP page elsewhere can set or
 * overwrite it). Browsers take a Secure cookie from http://localhost and http://127.0.0.1 (trustworthy
 * origins), so a development API on loopback works without TLS; anywhere else the cookie needs HTTPS.
 *
 * Redis keeps `api:session:<sha256(token)>` -> `{"u": user id, "c": created ms, "d": 1 if development
 * sign-in}` with a TTL of the idle limit, restarted at each use but never past the absolute lifetime;
 * `api:user-sessions:<user id>` is the set of the user's session hashes (sign out everywhere, the
 * per-user quota). Only hashes are stored, so a copy of Redis holds no usable session; logout deletes
 * the key, so a copied cookie dies with it. Nobody is signed in without a session: development sign-in
 * is a one-time link that starts an ordinary session (./dev-login.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RedisClient } from '../../bus/connection.js';
import { ApiError, unauthorized, withTimeout } from '../http-errors.js';

export const SESSION_COOKIE = '__Host-marketbus_session';
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const REDIS_WAIT_MS = 2000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const keyOfHash = (hash: string): string => `api:session:${hash}`;

/** `api:session:<sha256 hex of the token>`. */
export function sessionKey(token: string): string {
  return keyOfHash(sha256(token));
}

/** `api:user-sessions:<user id>`: the hashes of the user's sessions. */
export function userSessionsKey(userId: string): string {
  return `api:user-sessions:${userId}`;
}

export interface SessionLimits {
  /** Absolute lifetime of a session, seconds. */
  readonly ttlS: number;
  /** A session unused this long ends, seconds. */
  readonly idleS: number;
  /** Live sessions of one user at most. */
  readonly maxPerUser: number;
}

export interface Session {
  readonly userId: string;
  /** Started by the development sign-in link. */
  readonly dev: boolean;
}

/** A sign-in past `MAX_SESSIONS_PER_USER`: 429, `Retry-After` when the user's first session lapses. */
export class SessionLimitError extends ApiError {
  constructor(
    limit: number,
    readonly retryAfterS: number,
  ) {
    super(
      'SESSION_LIMIT',
      `this user has ${limit} sessions, the most allowed: sign out elsewhere (POST /auth/logout-all) or wait`,
    );
  }
}

export class SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly o: SessionLimits,
  ) {}

  /** A new session of `userId`; returns its token. Throws SessionLimitError past the quota. */
  async create(userId: string, dev = false): Promise<string> {
    const live = await this.live(userId);
    if (live.length >= this.o.maxPerUser)
      throw new SessionLimitError(this.o.maxPerUser, Math.max(1, Math.min(...live)));
    const token = randomBytes(32).toString('base64url');
    const hash = sha256(token);
    const index = userSessionsKey(userId);
    // Index first: a crash in between leaves an entry that points at nothing (pruned), never a
    // session that sign-out-everywhere cannot find.
    await this.wait(this.redis.sAdd(index, hash), 'session index');
    await this.wait(this.redis.expire(index, this.o.ttlS), 'session index');
    const record = JSON.stringify({ u: userId, c: Date.now(), ...(dev ? { d: 1 } : {}) });
    await this.wait(
      this.redis.set(keyOfHash(hash), record, {
        expiration: { type: 'EX', value: Math.min(this.o.idleS, this.o.ttlS) },
      }),
      'session create',
    );
    return token;
  }

  /** The live session of `token`, or null; a use restarts its idle time (up to its lifetime). */
  async lookup(token: string): Promise<Session | null> {
    if (!TOKEN_RE.test(token)) return null;
    const key = sessionKey(token);
    const s = parse(await this.wait(this.redis.get(key), 'session lookup'));
    if (!s) return null;
    const leftS = Math.floor((s.created + this.o.ttlS * 1000 - Date.now()) / 1000);
    if (leftS <= 0) {
      await this.wait(this.redis.del(key), 'session delete');
      return null;
    }
    // EXPIRE on a key deleted meanwhile (logout) does nothing: no session comes back.
    await this.wait(this.redis.expire(key, Math.min(this.o.idleS, leftS)), 'session refresh');
    return { userId: s.userId, dev: s.dev };
  }

  async destroy(token: string): Promise<void> {
    if (!TOKEN_RE.test(token)) return;
    const hash = sha256(token);
    const s = parse(await this.wait(this.redis.getDel(keyOfHash(hash)), 'session delete'));
    if (s) await this.wait(this.redis.sRem(userSessionsKey(s.userId), hash), 'session index');
  }

  /** End every session of `userId`; returns how many were live. */
  async destroyAll(userId: string): Promise<number> {
    const index = userSessionsKey(userId);
    const hashes = await this.wait(this.redis.sMembers(index), 'session index');
    let ended = 0;
    // One key at a time: on a cluster the sessions live in different slots.
    for (const h of hashes) ended += await this.wait(this.redis.del(keyOfHash(h)), 'session delete');
    await this.wait(this.redis.del(index), 'session index');
    return ended;
  }

  /** Seconds left of each live session of `userId`; entries of lapsed sessions are dropped. */
  private async live(userId: string): Promise<number[]> {
    const index = userSessionsKey(userId);
    const left: number[] = [];
    for (const h of await this.wait(this.redis.sMembers(index), 'session index')) {
      const ttl = await this.wait(this.redis.ttl(keyOfHash(h)), 'session quota');
      if (ttl === -2) await this.wait(this.redis.sRem(index, h), 'session index');
      else left.push(ttl < 0 ? this.o.idleS : ttl);
    }
    return left;
  }

  private wait<T>(p: Promise<T>, what: string): Promise<T> {
    return withTimeout(p, REDIS_WAIT_MS, what);
  }
}

function parse(raw: string | null): { userId: string; created: number; dev: boolean } | null {
  if (raw === null) return null;
  try {
    const v = JSON.parse(raw) as { u?: unknown; c?: unknown; d?: unknown };
    if (typeof v.u !== 'string' || typeof v.c !== 'number') return null;
    return { userId: v.u, created: v.c, dev: v.d === 1 };
  } catch {
    return null;
  }
}

export interface AuthUser {
  readonly id: string;
  /** Signed in by the development sign-in link. */
  readonly dev: boolean;
}

export class Authenticator {
  private readonly resolved = new WeakMap<FastifyRequest, Promise<AuthUser | null>>();

  constructor(
    readonly sessions: SessionStore,
    /** Absolute session lifetime, seconds (the cookie's Max-Age). */
    private readonly ttlS: number,
  ) {}

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

  /**
   * Start a new session of `userId` for this browser: a new token at every sign-in (no fixation), and
   * the request's old session ends first (so signing in again does not count twice against the quota).
   */
  async signIn(req: FastifyRequest, reply: FastifyReply, userId: string, dev = false): Promise<void> {
    const old = this.token(req);
    if (old) await this.sessions.destroy(old);
    let token: string;
    try {
      token = await this.sessions.create(userId, dev);
    } catch (err) {
      if (err instanceof SessionLimitError) void reply.header('retry-after', String(err.retryAfterS));
      throw err;
    }
    void reply.setCookie(SESSION_COOKIE, token, { ...COOKIE, signed: true, maxAge: this.ttlS });
  }

  clearCookie(reply: FastifyReply): void {
    void reply.clearCookie(SESSION_COOKIE, COOKIE);
  }

  private async resolve(req: FastifyRequest): Promise<AuthUser | null> {
    const token = this.token(req);
    if (!token) return null;
    const s = await this.sessions.lookup(token);
    return s ? { id: s.userId, dev: s.dev } : null;
  }
}

const COOKIE = { httpOnly: true, sameSite: 'lax', secure: true, path: '/' } as const;
