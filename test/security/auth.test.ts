/**
 * Attacks on sign-in and sessions (docs/security.md, "Sign-in and sessions"), as an attacker would try
 * them: against a real `marketbus up` (the built CLI) reached directly and through a TCP forwarder that
 * rewrites nothing (nginx's default `proxy_pass`, `ssh -L`, `kubectl port-forward`), and in-process
 * where a setting must be short (idle expiry) or the listen address matters.
 *
 * - No ambient session: a request without a cookie is nobody, from loopback, through the forwarder,
 *   with any Host; development sign-in is a one-time link that works once.
 * - A captured Telegram login payload does not sign in a second time.
 * - Login CSRF: a sign-in POST from a page of another origin is 403, and there is no GET sign-in.
 * - Query strings (the sign-in token) never reach the logs.
 * - The cookie is `__Host-` prefixed, HttpOnly, SameSite=Lax, Secure (also on a non-loopback listen).
 * - Idle sessions end; "sign out everywhere" ends the user's other sessions; sessions per user are
 *   capped with 429 and `Retry-After`.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionKey, SESSION_COOKIE } from '../../src/api/auth/session.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { silentLogger } from '../../src/util/log.js';
import {
  BOT_TOKEN,
  HttpClient,
  signedLoginPayload,
  startApi,
  statusWithHost,
  testSettings,
} from '../helpers/api.js';
import { startForwarder, type Forwarder } from '../helpers/forwarder.js';
import { connect, redisOptions, startRedis, uniq, waitFor, type TestRedis } from '../helpers/redis.js';
import { spawnUp, untilUp, type Up } from '../helpers/up-process.js';

const ORIGIN_ATTACKER = 'https://evil.example';

/** The session token inside a client's signed cookie (`<token>.<signature>`). */
function tokenOf(c: HttpClient): string {
  const value = decodeURIComponent((c.cookie ?? '').split('=').slice(1).join('='));
  return value.split('.')[0] ?? '';
}

function sessionCookie(headers: Headers): string | undefined {
  return headers.getSetCookie().find((x) => x.startsWith(`${SESSION_COOKIE}=`));
}

/** A Telegram id not used by any other test (payloads work once, sessions are per user). */
const freshId = (): string => String(100_000_000 + Math.floor(Math.random() * 800_000_000));

describe('a real marketbus up with nothing configured (development sign-in on by itself)', () => {
  let up: Up;
  let api: string;
  let devLogin: string;
  let fwd: Forwarder;

  beforeAll(async () => {
    up = spawnUp(['--port', '0']);
    const started = await untilUp(up);
    api = started.api;
    devLogin = started.devLogin ?? '';
    fwd = await startForwarder(api);
  }, 150_000);

  afterAll(async () => {
    up.child.kill('SIGINT');
    await up.exit;
  });

  it('prints a one-time sign-in link and says it turned development sign-in on', () => {
    expect(devLogin).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/auth\/dev\?token=[A-Za-z0-9_-]{43}$/);
    expect(up.stderr()).toMatch(/no TELEGRAM_BOT_TOKEN: development sign-in is on/);
  });

  it('a request without a session is nobody: directly, through the forwarder, with a loopback Host', async () => {
    for (const base of [api, fwd.url]) {
      const c = new HttpClient(base);
      expect((await c.get('/auth/current-user')).status, base).toBe(401);
      expect((await c.get('/strategies')).status, base).toBe(401);
      const spoofed = await c.request('GET', '/auth/current-user', {
        headers: { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', forwarded: 'for=127.0.0.1' },
      });
      expect(spoofed.status, base).toBe(401);
      expect(await statusWithHost(base, '/auth/current-user', 'localhost')).toBe(401);
    }
    expect(fwd.accepted).toBeGreaterThan(0);
  });

  it('the printed link works once (through the forwarder): a session cookie, then refused', async () => {
    const path = `${new URL(devLogin).pathname}${new URL(devLogin).search}`;
    const token = new URL(devLogin).searchParams.get('token') ?? '';
    // guessing does not use the link up
    expect((await new HttpClient(fwd.url).get(`/auth/dev?token=${'x'.repeat(43)}`)).status).toBe(401);
    const victim = new HttpClient(fwd.url);
    const first = await victim.get(path);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    expect(sessionCookie(first.headers)).toBeDefined();
    const me = await victim.get('/auth/current-user');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user_id: 'local', dev_login: true });
    // the attacker who saw the link later (shell history, a screenshot) gets nothing
    for (const base of [fwd.url, api]) {
      const attacker = new HttpClient(base);
      const again = await attacker.get(path);
      expect(again.status).toBe(401);
      expect(sessionCookie(again.headers)).toBeUndefined();
      expect((await attacker.get('/auth/current-user')).status).toBe(401);
    }
    // the token is in the start banner only, never in a log line
    expect(up.stderr().split(token).length - 1).toBe(1);
  });
});

describe('a real marketbus up with a bot token (Telegram sign-in)', () => {
  let up: Up;
  let api: string;
  let fwd: Forwarder;
  const MAX_SESSIONS = 3;

  beforeAll(async () => {
    up = spawnUp(['--port', '0'], {
      env: {
        TELEGRAM_BOT_TOKEN: BOT_TOKEN,
        MAX_SESSIONS_PER_USER: String(MAX_SESSIONS),
        // Every sign-in here comes from 127.0.0.1; the per-address limit is tried in limits.test.ts.
        RATE_LIMIT_LOGIN_PER_MIN: '1000',
      },
    });
    const started = await untilUp(up);
    api = started.api;
    expect(started.devLogin).toBeNull();
    fwd = await startForwarder(api);
  }, 150_000);

  afterAll(async () => {
    up.child.kill('SIGINT');
    await up.exit;
  });

  it('no development sign-in: /auth/dev is 404, and no request is anybody without a session', async () => {
    const c = new HttpClient(fwd.url);
    expect((await c.get(`/auth/dev?token=${'A'.repeat(43)}`)).status).toBe(404);
    expect((await c.get('/auth/current-user')).status).toBe(401);
  });

  it('a captured login payload is refused the second time (directly and through the forwarder)', async () => {
    const payload = signedLoginPayload(BOT_TOKEN, { id: freshId() });
    const victim = new HttpClient(fwd.url);
    expect((await victim.post('/auth/telegram/login', payload)).status).toBe(200);
    for (const base of [fwd.url, api]) {
      const attacker = new HttpClient(base);
      const replay = await attacker.post('/auth/telegram/login', payload);
      expect(replay.status).toBe(401);
      expect(replay.body['code']).toBe('telegram_replayed');
      expect(sessionCookie(replay.headers)).toBeUndefined();
      expect((await attacker.get('/auth/current-user')).status).toBe(401);
    }
    // the same account signs in again with a new payload (a new auth_date or fields)
    const later = signedLoginPayload(BOT_TOKEN, { id: payload['id'] ?? '', first_name: 'Again' });
    expect((await new HttpClient(fwd.url).post('/auth/telegram/login', later)).status).toBe(200);
  });

  it('login CSRF: a sign-in POST from another origin is 403, and a GET sign-in link does nothing', async () => {
    const victim = new HttpClient(fwd.url);
    const forged = await victim.request('POST', '/auth/telegram/login', {
      json: signedLoginPayload(BOT_TOKEN, { id: freshId() }),
      headers: { origin: ORIGIN_ATTACKER },
    });
    expect(forged.status).toBe(403);
    expect(forged.body['code']).toBe('cross_origin');
    expect(sessionCookie(forged.headers)).toBeUndefined();
    // the widget-redirect form of the attack: <img src=".../auth/telegram/login?<attacker's payload>">
    const q = new URLSearchParams(signedLoginPayload(BOT_TOKEN, { id: freshId() }));
    const viaGet = await victim.get(`/auth/telegram/login?${q.toString()}`);
    expect(viaGet.status).toBe(404);
    expect(sessionCookie(viaGet.headers)).toBeUndefined();
    expect((await victim.get('/auth/current-user')).status).toBe(401);
  });

  it('the session cookie is __Host- prefixed, HttpOnly, SameSite=Lax, Secure, Path=/, no Domain', async () => {
    const res = await new HttpClient(fwd.url).post(
      '/auth/telegram/login',
      signedLoginPayload(BOT_TOKEN, { id: freshId() }),
    );
    const cookie = sessionCookie(res.headers) ?? '';
    expect(cookie).toMatch(/^__Host-marketbus_session=/);
    const attrs = cookie
      .split(';')
      .slice(1)
      .map((a) => a.trim().toLowerCase());
    expect(attrs).toContain('httponly');
    expect(attrs).toContain('secure');
    expect(attrs).toContain('samesite=lax');
    expect(attrs).toContain('path=/');
    expect(attrs.some((a) => a.startsWith('domain='))).toBe(false);
  });

  it('sign out everywhere ends the other sessions of the user, not those of other users', async () => {
    const id = freshId();
    const laptop = new HttpClient(fwd.url);
    const phone = new HttpClient(api);
    const other = new HttpClient(api);
    await laptop.login(BOT_TOKEN, { id, first_name: 'Laptop' });
    await phone.login(BOT_TOKEN, { id, first_name: 'Phone' });
    await other.login(BOT_TOKEN, { id: freshId() });
    const stolen = phone.cookie;
    // from another origin it is refused like any state-changing request
    const csrf = await laptop.request('POST', '/auth/logout-all', { headers: { origin: ORIGIN_ATTACKER } });
    expect(csrf.status).toBe(403);
    expect((await phone.get('/auth/current-user')).status).toBe(200);
    const out = await laptop.post<{ ok: boolean; ended: number }>('/auth/logout-all');
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ ok: true, ended: 2 });
    expect((await laptop.get('/auth/current-user')).status).toBe(401);
    expect((await phone.get('/auth/current-user')).status).toBe(401);
    const thief = new HttpClient(api);
    thief.cookie = stolen;
    expect((await thief.get('/auth/current-user')).status).toBe(401);
    expect((await other.get('/auth/current-user')).status).toBe(200);
    expect((await new HttpClient(api).post('/auth/logout-all')).status).toBe(401);
  });

  it(`past ${MAX_SESSIONS} sessions of a user a sign-in is 429 with Retry-After; the others go on`, async () => {
    const id = freshId();
    const signedIn: HttpClient[] = [];
    for (let i = 0; i < MAX_SESSIONS; i++) {
      const c = new HttpClient(fwd.url);
      await c.login(BOT_TOKEN, { id, first_name: `Device${i}` });
      signedIn.push(c);
    }
    const extra = new HttpClient(fwd.url);
    const refused = await extra.post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN, { id }));
    expect(refused.status).toBe(429);
    expect(refused.body['code']).toBe('session_limit');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(sessionCookie(refused.headers)).toBeUndefined();
    // signing in again from a browser that has a session replaces it: no lockout of oneself
    await signedIn[0]?.login(BOT_TOKEN, { id, first_name: 'Device0-again' });
    for (const c of signedIn) expect((await c.get('/auth/current-user')).status).toBe(200);
    // another user is not affected
    await new HttpClient(fwd.url).login(BOT_TOKEN, { id: freshId() });
    // a signed-out session frees its place
    await signedIn[1]?.post('/auth/logout');
    await extra.login(BOT_TOKEN, { id, first_name: 'Extra' });
    expect((await extra.get('/auth/current-user')).status).toBe(200);
  });
});

describe('in-process API: logs, listen address and idle expiry', () => {
  let server: TestRedis;
  let redis: RedisClient;
  let db: RelationalDb;

  beforeAll(async () => {
    server = await startRedis({ persistence: 'none' });
    redis = await connect(server);
    db = openRelationalDb({}, silentLogger);
    await db.migrate();
  });

  afterAll(async () => {
    await db.close();
  });

  it('a failing request logs its route, never its query string (the sign-in token)', async () => {
    const own = await startRedis({ persistence: 'none' });
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const dev = await startApi({
      redis: { url: own.url, reconnectBaseMs: 50, reconnectMaxMs: 200 },
      db: db.sql,
      log,
      settings: testSettings({ MARKETBUS_DEV_LOGIN: '1' }),
    });
    const url = new URL(dev.devLoginUrl ?? '');
    const token = url.searchParams.get('token') ?? '';
    await own.kill('SIGKILL');
    // Redis is down: starting the session fails (503) after the token was checked
    const res = await new HttpClient(dev.url).get(`${url.pathname}${url.search}`);
    expect(res.status).toBe(503);
    const failed = lines.filter((l) => l.includes('api dependency unavailable'));
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.join('')).toContain('"route":"/auth/dev"');
    expect(lines.join('')).not.toContain(token);
    await dev.close();
  });

  it('listening on 0.0.0.0 (reachable from the network) the cookie is Secure and __Host-', async () => {
    const open = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      host: '0.0.0.0',
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    });
    const res = await new HttpClient(`http://127.0.0.1:${open.port}`).post(
      '/auth/telegram/login',
      signedLoginPayload(BOT_TOKEN, { id: freshId() }),
    );
    expect(res.status).toBe(200);
    expect(sessionCookie(res.headers)).toMatch(/^__Host-marketbus_session=.*; Secure/i);
    await open.close();
  });

  it('a session unused for SESSION_IDLE_S ends; each use restarts its idle time', async () => {
    const IDLE_S = 2;
    const idle = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN, SESSION_IDLE_S: String(IDLE_S) }),
    });
    const c = new HttpClient(idle.url);
    await c.login(BOT_TOKEN, { id: freshId(), username: uniq('idle') });
    const key = sessionKey(tokenOf(c));
    expect(await redis.ttl(key)).toBe(IDLE_S);
    // time passes; a use puts the whole idle time back
    await waitFor(async () => (await redis.ttl(key)) < IDLE_S, 10_000, 'the idle time to run');
    expect((await c.get('/auth/current-user')).status).toBe(200);
    expect(await redis.ttl(key)).toBe(IDLE_S);
    // unused, it ends by itself
    await waitFor(async () => (await redis.exists(key)) === 0, 10_000, 'the idle session to end');
    expect((await c.get('/auth/current-user')).status).toBe(401);
    await idle.close();
  });

  it('no use keeps a session past SESSION_TTL_S (the absolute lifetime)', async () => {
    const short = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN, SESSION_TTL_S: '3', SESSION_IDLE_S: '60' }),
    });
    const c = new HttpClient(short.url);
    await c.login(BOT_TOKEN, { id: freshId() });
    const key = sessionKey(tokenOf(c));
    expect(await redis.ttl(key)).toBeLessThanOrEqual(3);
    expect((await c.get('/auth/current-user')).status).toBe(200);
    expect(await redis.ttl(key)).toBeLessThanOrEqual(3);
    await waitFor(
      async () => (await c.get('/auth/current-user')).status === 401,
      10_000,
      'the lifetime to end',
    );
    await short.close();
  });
});
