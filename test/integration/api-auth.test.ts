/**
 * Identity over HTTP: Telegram Login Widget sign-in, sessions, logout, the one-time chat link
 * confirmed through the bot's webhook, development sign-in, production fail-fast, and bad input.
 */
import { request as httpRequest } from 'node:http';
import { linkKey } from '../../src/api/auth/chat-link.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiSettingsFromEnv } from '../../src/api/config.js';
import type { ApiService } from '../../src/app/start-api.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { confirmedChat } from '../../src/api/auth/identity-store.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { ConfigError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';
import {
  BOT_TOKEN,
  HttpClient,
  signedLoginPayload,
  startApi,
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

/** GET with a chosen Host header (fetch does not let us set it). */
function statusWithHost(port: number, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Telegram login', () => {
  it('signs in with a payload signed as the Telegram login widget signs it, sets a signed HttpOnly SameSite=Lax cookie, and knows the user', async () => {
    const c = client();
    const res = await c.post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN));
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      telegram_id: 411001,
      username: 'roehub_test',
      first_name: 'Roe',
      chat_confirmed: false,
    });
    const cookie = res.headers.getSetCookie().find((x) => x.startsWith('marketbus_session='));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toMatch(/Secure/i); // not production
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

  it('refuses a forged hash, another bot, a changed field, a stale or future auth_date, and malformed payloads', async () => {
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
    const stale = await client().post(
      '/auth/telegram/login',
      signedLoginPayload(BOT_TOKEN, {}, now - 86_401),
    );
    expect(stale.status).toBe(401);
    expect(stale.body['code']).toBe('telegram_stale');
    const future = await client().post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN, {}, now + 3600));
    expect(future.status).toBe(401);
    expect(future.body['code']).toBe('telegram_future');
    const nearlyStale = await client().post(
      '/auth/telegram/login',
      signedLoginPayload(BOT_TOKEN, {}, now - 86_000),
    );
    expect(nearlyStale.status).toBe(200);

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

  it('the widget redirect (GET with the fields in the query) signs in and redirects to /', async () => {
    const c = client();
    const q = new URLSearchParams(signedLoginPayload(BOT_TOKEN, { id: '7770001', username: 'via_get' }));
    const res = await c.get(`/auth/telegram/login?${q.toString()}`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    expect((await c.get('/auth/current-user')).body).toMatchObject({ telegram_id: 7770001 });
  });
});

describe('sessions', () => {
  it('current-user is 401 without a cookie, with a cookie signed by another secret, and with a made-up session', async () => {
    expect((await client().get('/auth/current-user')).status).toBe(401);
    const c = client();
    await c.login(BOT_TOKEN);
    const value = decodeURIComponent((c.cookie ?? '').split('=').slice(1).join('='));
    const [token] = value.split('.');
    const unsigned = client();
    unsigned.cookie = `marketbus_session=${token ?? ''}`;
    expect((await unsigned.get('/auth/current-user')).status).toBe(401);
    const badSig = client();
    badSig.cookie = `marketbus_session=${encodeURIComponent(`${token ?? ''}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`)}`;
    expect((await badSig.get('/auth/current-user')).status).toBe(401);
    // Redis keeps only the hash of the token
    expect(await redis.keys(`*${token ?? 'none'}*`)).toEqual([]);
  });

  it('logout ends the session: the old cookie no longer works', async () => {
    const c = client();
    await c.login(BOT_TOKEN);
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

  it('refuses state-changing requests from another origin', async () => {
    const c = client();
    await c.login(BOT_TOKEN);
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
      await c.login(BOT_TOKEN);
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
  it('on loopback without a bot token, requests without a session are the local user', async () => {
    const dev = await startApi({ redis: redisOptions(server), db: db.sql, settings: testSettings({}) });
    expect(dev.devLogin).toBe(true);
    const me = await new HttpClient(dev.url).get('/auth/current-user');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ user_id: 'local', username: 'local', dev_login: true });
    // not through a proxy, and not for a page of another origin
    const proxied = await new HttpClient(dev.url).request('GET', '/auth/current-user', {
      headers: { 'x-forwarded-for': '203.0.113.7' },
    });
    expect(proxied.status).toBe(401);
    // DNS rebinding: a foreign name that resolves to 127.0.0.1
    expect(await statusWithHost(dev.port, '/auth/current-user', `evil.example:${dev.port}`)).toBe(401);
    expect(await statusWithHost(dev.port, '/auth/current-user', `localhost:${dev.port}`)).toBe(200);
    // login itself is not configured there
    expect(
      (await new HttpClient(dev.url).post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN))).status,
    ).toBe(503);
    await dev.close();
  });

  it('is absent when a bot token is set', async () => {
    expect(api.devLogin).toBe(false);
    expect((await client().get('/auth/current-user')).status).toBe(401);
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
    expect(prod.devLogin).toBe(false);
    const res = await new HttpClient(prod.url).post('/auth/telegram/login', signedLoginPayload(BOT_TOKEN));
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie().find((x) => x.startsWith('marketbus_session='))).toMatch(/Secure/);
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
