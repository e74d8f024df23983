/**
 * Identity over HTTP: Telegram Login Widget sign-in, sessions, logout, the one-time chat link
 * confirmed through the bot's webhook, the one-time development sign-in link, production fail-fast,
 * and bad input. (test/security/auth.test.ts attacks the same controls on a real `marketbus up`.)
 */
import { linkKey } from '../../src/api/auth/chat-link.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiSettingsFromEnv } from '../../src/api/config.js';
import type { ApiService } from '../../src/app/start-api.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { confirmedChat } from '../../src/api/auth/identity-store.js';
import { SESSION_COOKIE } from '../../src/api/auth/session.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { ConfigError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';
import {
  BOT_TOKEN,
  HttpClient,
  signedLoginPayload,
  startApi,
  statusWithHost,
  testSettings,
  WEBHOOK_SECRET,
} from '../helpers/api.js';
import { FakeTelegram } from '../helpers/fake-telegram.js';
import { startPostgres } from '../helpers/postgres.js';
import { connect, startRedis, type TestRedis, redisOptions } from '../helpers/redis.js';

let server: TestRedis;
let redis: RedisClient;
let db: RelationalDb;
let api: ApiService;

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
  db = openRelationalDb({ databaseUrl: (await startPostgres()).url }, silentLogger);
  await db.migrate();
  api = await startApi({
    redis: redisOptions(server),
    db: db.sql,
    settings: testSettings({
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
      TELEGRAM_BOT_USERNAME: 'marketbus_test_bot',
    }),
  });
});

afterAll(async () => {
  await api.close();
  await db.close();
});

const client = (): HttpClient => new HttpClient(api.url);

describe('Telegram login', () => {
  it('signs in with a payload signed as the Telegram login widget signs it, sets a signed __Host- HttpOnly SameSite=Lax Secure cookie, and knows the user', async () => {
    const c = client();
    const res = await c.post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN));
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      telegram_id: 411001,
      username: 'roehub_test',
      first_name: 'Roe',
      chat_confirmed: false,
    });
    const cookie = res.headers.getSetCookie().find((x) => x.startsWith(`${SESSION_COOKIE}=`));
    expect(SESSION_COOKIE).toMatch(/^__Host-/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).toMatch(/; Secure/i); // a __Host- cookie must be; browsers take it on loopback http
    expect(cookie).not.toMatch(/Domain=/i);
    const me = await c.get('/auth/current-user');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user_id: res.body['user_id'], telegram_id: 411001, dev_login: false });

    // the same Telegram account signs in again: same user, fields updated
    const again = client();
    const second = await again.post(
      '/auth/telegram/login',
      signedLoginPayload(BOT_TOKEN, { username: 'roe_renamed' }),
    );
    expect(second.body).toMatchObject({ user_id: res.body['user_id'], username: 'roe_renamed' });
  });

  it('accepts numbers as the widget sends them (id and auth_date as JSON numbers)', async () => {
    const p = signedLoginPayload(BOT_TOKEN, { id: '5550001' });
    const res = await client().post('/auth/telegram/login', {
      ...p,
      id: 5550001,
      auth_date: Number(p['auth_date']),
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body['telegram_id']).toBe(5550001);
  });

  it('refuses a forged hash, another bot, a changed field, a stale or future auth_date, a replay, and malformed payloads', async () => {
    const good = signedLoginPayload(BOT_TOKEN);
    const forged = await client().post('/auth/telegram/login', { ...good, hash: 'a'.repeat(64) });
    expect(forged.status).toBe(401);
    expect(forged.body['code']).toBe('telegram_bad_hash');
    const otherBot = await client().post('/auth/telegram/login', signedLoginPayload('999:other-bot'));
    expect(otherBot.status).toBe(401);
    const tampered = await client().post('/auth/telegram/login', { ...good, id: '411002' });
    expect(tampered.status).toBe(401);
    const extra = await client().post('/auth/telegram/login', { ...good, is_admin: 'true' });
    expect(extra.status).toBe(401); // every field is signed

    const now = Math.floor(Date.now() / 1000);
    // TELEGRAM_AUTH_MAX_AGE_S: 600 s by default
    const stale = await client().post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN, {}, now - 601));
    expect(stale.status).toBe(401);
    expect(stale.body['code']).toBe('telegram_stale');
    const future = await client().post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN, {}, now + 3600));
    expect(future.status).toBe(401);
    expect(future.body['code']).toBe('telegram_future');
    const nearlyStale = signedLoginPayload(BOT_TOKEN, { id: '411003' }, now - 590);
    expect((await client().post('/auth/telegram/login', nearlyStale)).status).toBe(200);
    // each payload works once; its mark in Redis lasts until the payload would be stale anyway
    const replay = await client().post('/auth/telegram/login', nearlyStale);
    expect(replay.status).toBe(401);
    expect(replay.body['code']).toBe('telegram_replayed');
    expect(replay.headers.getSetCookie()).toEqual([]);
    const [seen] = await redis.keys('api:login-seen:*');
    expect(await redis.ttl(seen ?? 'none')).toBeGreaterThan(0);

    for (const bad of [
      [],
      'x',
      { ...good, hash: 'zz' },
      { ...good, first_name: { a: 1 } },
      { hash: good['hash'] },
    ]) {
      const r = await client().post('/auth/telegram/login', bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    // nothing of that signed anyone in
    const c = client();
    await c.post('/auth/telegram/login', { ...good, hash: 'a'.repeat(64) });
    expect(c.cookie).toBeUndefined();
    expect((await c.get('/auth/current-user')).status).toBe(401);
  });

  it('there is no GET sign-in (a link on another site cannot sign a browser in): only the POST', async () => {
    const c = client();
    const q = new URLSearchParams(signedLoginPayload(BOT_TOKEN, { id: '7770001', username: 'via_get' }));
    const res = await c.get(`/auth/telegram/login?${q.toString()}`);
    expect(res.status).toBe(404);
    expect(c.cookie).toBeUndefined();
    expect((await c.get('/auth/current-user')).status).toBe(401);
  });
});

describe('sessions', () => {
  it('current-user is 401 without a cookie, with a cookie signed by another secret, and with a made-up session', async () => {
    expect((await client().get('/auth/current-user')).status).toBe(401);
    const c = client();
    await c.login(BOT_TOKEN, { id: '411101' });
    const value = decodeURIComponent((c.cookie ?? '').split('=').slice(1).join('='));
    const [token] = value.split('.');
    const unsigned = client();
    unsigned.cookie = `${SESSION_COOKIE}=${token ?? ''}`;
    expect((await unsigned.get('/auth/current-user')).status).toBe(401);
    const badSig = client();
    badSig.cookie = `${SESSION_COOKIE}=${encodeURIComponent(`${token ?? ''}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`)}`;
    expect((await badSig.get('/auth/current-user')).status).toBe(401);
    // Redis keeps only the hash of the token
    expect(await redis.keys(`*${token ?? 'none'}*`)).toEqual([]);
  });

  it('logout ends the session: the old cookie no longer works', async () => {
    const c = client();
    await c.login(BOT_TOKEN, { id: '411102' });
    const saved = c.cookie;
    expect((await c.get('/auth/current-user')).status).toBe(200);
    const out = await c.post('/auth/logout');
    expect(out.status).toBe(200);
    expect(c.cookie).toBeUndefined();
    expect((await c.get('/auth/current-user')).status).toBe(401);
    const replay = client();
    replay.cookie = saved;
    expect((await replay.get('/auth/current-user')).status).toBe(401);
  });

  it('logout-all ends every session of the user (their keys live in other slots on a cluster)', async () => {
    const a = client();
    const b = client();
    await a.login(BOT_TOKEN, { id: '411106', first_name: 'A' });
    await b.login(BOT_TOKEN, { id: '411106', first_name: 'B' });
    const out = await a.post<{ ended: number }>('/auth/logout-all');
    expect(out.status).toBe(200);
    expect(out.body.ended).toBe(2);
    expect(a.cookie).toBeUndefined();
    expect((await b.get('/auth/current-user')).status).toBe(401);
  });

  it('refuses state-changing requests from another origin', async () => {
    const c = client();
    await c.login(BOT_TOKEN, { id: '411103' });
    const r = await c.request('POST', '/auth/logout', { headers: { origin: 'https://evil.example' } });
    expect(r.status).toBe(403);
    expect((await c.get('/auth/current-user')).status).toBe(200);
    const same = await c.request('POST', '/auth/logout', { headers: { origin: api.url } });
    expect(same.status).toBe(200);
  });
});

describe('chat link through the bot', () => {
  const update = (text: string, chatId: number, fromId: number) => ({
    update_id: Math.floor(Math.random() * 1e9),
    message: {
      message_id: 1,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chatId, type: 'private' },
      from: { id: fromId, is_bot: false, first_name: 'Roe' },
      text,
    },
  });
  const hook = (body: unknown, secret: string | null = WEBHOOK_SECRET) =>
    client().request('POST', '/telegram/webhook', {
      json: body,
      headers: secret === null ? {} : { 'x-telegram-bot-api-secret-token': secret },
    });

  it('a one-time deep link confirms the chat it is opened from, once', async () => {
    const c = client();
    const me = await c.login(BOT_TOKEN, { id: '600001' });
    expect((await client().post('/auth/telegram/link')).status).toBe(401);
    const link = await c.post<{ token: string; deep_link: string; expires_in: number }>(
      '/auth/telegram/link',
    );
    expect(link.status).toBe(200);
    expect(link.body.deep_link).toBe(`https://t.me/marketbus_test_bot?start=${link.body.token}`);
    expect(link.body.expires_in).toBeGreaterThan(0);
    const ttl = await redis.ttl(linkKey(link.body.token));
    expect(ttl).toBeGreaterThan(0);

    expect((await hook(update(`/start ${link.body.token}`, 600001, 600001), 'wrong')).status).toBe(401);
    expect((await hook(update(`/start ${link.body.token}`, 600001, 600001), null)).status).toBe(401);
    expect(await confirmedChat(db.sql, me.user_id)).toBeNull();

    // forwarded to someone else: refused, and the token still works for its owner
    const foreign = await hook(update(`/start ${link.body.token}`, 700002, 700002));
    expect(foreign.status).toBe(200);
    expect(String(foreign.body['text'])).toMatch(/another Telegram account/);
    expect(await confirmedChat(db.sql, me.user_id)).toBeNull();

    const ok = await hook(update(`/start ${link.body.token}`, 600001, 600001));
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ method: 'sendMessage', chat_id: 600001 });
    expect(await confirmedChat(db.sql, me.user_id)).toBe(600001);
    expect((await c.get('/auth/current-user')).body['chat_confirmed']).toBe(true);

    const reused = await hook(update(`/start ${link.body.token}`, 600001, 600001));
    expect(String(reused.body['text'])).toMatch(/invalid or has expired/);
    // other updates are acknowledged and ignored
    expect((await hook({ update_id: 5, edited_message: {} })).body).toEqual({ ok: true });
    expect((await hook(update('hello', 1, 1))).body).toEqual({ ok: true });
  });

  it('without TELEGRAM_BOT_USERNAME the bot is asked with getMe; without a webhook secret the webhook is off', async () => {
    const tg = await FakeTelegram.start({ token: BOT_TOKEN });
    try {
      const other = await startApi({
        redis: redisOptions(server),
        db: db.sql,
        settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_API_ROOT: tg.apiRoot }),
      });
      const c = new HttpClient(other.url);
      await c.login(BOT_TOKEN, { id: '411104' });
      const link = await c.post<{ deep_link: string }>('/auth/telegram/link');
      expect(link.status, link.text).toBe(200);
      expect(link.body.deep_link).toMatch(/^https:\/\/t\.me\/marketbus_test_bot\?start=[A-Za-z0-9_-]{32}$/);
      const off = await new HttpClient(other.url).request('POST', '/telegram/webhook', {
        json: update('/start x', 1, 1),
        headers: { 'x-telegram-bot-api-secret-token': 'anything' },
      });
      expect(off.status).toBe(404);
      await other.close();
    } finally {
      await tg.close();
    }
  });
});

describe('development sign-in and production settings', () => {
  it('is a one-time link: nobody is signed in without it, even on loopback; it works once', async () => {
    const dev = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      settings: testSettings({ MARKETBUS_DEV_LOGIN: '1' }),
    });
    const url = dev.devLoginUrl ?? '';
    expect(url).toMatch(new RegExp(`^${dev.url}/auth/dev\\?token=[A-Za-z0-9_-]{43}$`));
    // no ambient local user, whatever the Host
    expect((await new HttpClient(dev.url).get('/auth/current-user')).status).toBe(401);
    expect(await statusWithHost(dev.url, '/auth/current-user', `localhost:${dev.port}`)).toBe(401);
    // a wrong token is refused and does not use the link up
    const guess = new HttpClient(dev.url);
    expect((await guess.get(`/auth/dev?token=${'A'.repeat(43)}`)).status).toBe(401);
    expect((await guess.get('/auth/dev')).status).toBe(401);
    expect(guess.cookie).toBeUndefined();
    const c = new HttpClient(dev.url);
    const first = await c.get(new URL(url).pathname + new URL(url).search);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    const me = await c.get('/auth/current-user');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user_id: 'local', username: 'local', dev_login: true });
    // used: refused from now on
    const again = new HttpClient(dev.url);
    expect(await again.devLogin(url)).toBe(401);
    expect(again.cookie).toBeUndefined();
    // Telegram login is not configured there
    expect(
      (await new HttpClient(dev.url).post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN))).status,
    ).toBe(503);
    await dev.close();
  });

  it('is off unless asked for: /auth/dev is 404', async () => {
    expect(api.devLoginUrl).toBeNull();
    expect((await client().get(`/auth/dev?token=${'A'.repeat(43)}`)).status).toBe(404);
    expect((await client().get('/auth/current-user')).status).toBe(401);
    const plain = await startApi({ redis: redisOptions(server), db: db.sql, settings: testSettings({}) });
    expect(plain.devLoginUrl).toBeNull();
    expect((await new HttpClient(plain.url).get('/auth/current-user')).status).toBe(401);
    await plain.close();
  });

  it('is refused in production, however it is asked for', async () => {
    const prod = { NODE_ENV: 'production', TELEGRAM_BOT_TOKEN: BOT_TOKEN, SESSION_SECRET: 'p'.repeat(48) };
    expect(() => apiSettingsFromEnv({ ...prod, MARKETBUS_DEV_LOGIN: '1' })).toThrow(ConfigError);
    await expect(
      startApi({
        redis: redisOptions(server),
        db: db.sql,
        settings: { ...apiSettingsFromEnv(prod), devLogin: true },
      }),
    ).rejects.toThrow(ConfigError);
  });

  it('production refuses to start without TELEGRAM_BOT_TOKEN or SESSION_SECRET, naming the key', () => {
    const err = (env: NodeJS.ProcessEnv): ConfigError => {
      try {
        apiSettingsFromEnv(env);
      } catch (e) {
        if (e instanceof ConfigError) return e;
        throw e;
      }
      throw new Error('no error');
    };
    expect(err({ NODE_ENV: 'production', SESSION_SECRET: 'x'.repeat(40) }).key).toBe('TELEGRAM_BOT_TOKEN');
    expect(err({ NODE_ENV: 'production', TELEGRAM_BOT_TOKEN: BOT_TOKEN }).key).toBe('SESSION_SECRET');
    expect(err({ NODE_ENV: 'production', TELEGRAM_BOT_TOKEN: BOT_TOKEN, SESSION_SECRET: 'short' }).key).toBe(
      'SESSION_SECRET',
    );
    const ok = apiSettingsFromEnv({
      NODE_ENV: 'production',
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      SESSION_SECRET: 'x'.repeat(40),
    });
    expect(ok.production).toBe(true);
  });

  it('production cookies are Secure', async () => {
    const prod = await startApi({
      redis: redisOptions(server),
      db: db.sql,
      settings: apiSettingsFromEnv({
        NODE_ENV: 'production',
        TELEGRAM_BOT_TOKEN: BOT_TOKEN,
        SESSION_SECRET: 'p'.repeat(48),
        // This file's sign-ins share one counter in Redis (test/helpers/api.ts testSettings).
        RATE_LIMIT_LOGIN_PER_MIN: '1000',
      }),
    });
    expect(prod.devLoginUrl).toBeNull();
    const res = await new HttpClient(prod.url).post(
      '/auth/telegram/login',
      signedLoginPayload(BOT_TOKEN, { id: '411105' }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie().find((x) => x.startsWith(`${SESSION_COOKIE}=`))).toMatch(/Secure/);
    await prod.close();
  });
});

describe('bad input', () => {
  it('an oversized body is 413, malformed JSON 400, a non-JSON body 415, and the server goes on', async () => {
    const big = await client().request('POST', '/auth/telegram/login', {
      body: JSON.stringify({ pad: 'x'.repeat(70 * 1024) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ code: 'payload_too_large' });
    const broken = await client().request('POST', '/auth/telegram/login', {
      body: '{"id": 1,',
      headers: { 'content-type': 'application/json' },
    });
    expect(broken.status).toBe(400);
    expect(typeof broken.body['error']).toBe('string');
    const form = await client().request('POST', '/auth/telegram/login', {
      body: 'id=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    expect((await client().get('/nope')).status).toBe(404);
    expect((await client().get('/healthz')).status).toBe(200);
  });
});
