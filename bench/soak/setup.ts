/**
 * Users and strategies of the soak, made through the real API as a person would: each user signs in
 * with a Telegram Login Widget payload (signed with the bot token the soak gave the API, by the rule of
 * the runbook's snippet) and keeps the session cookie; each strategy is `POST /strategies`, then
 * `POST /strategies/:id/run` (the API's command to the runner, answered by the runner).
 */
import { SESSION_COOKIE } from '../../src/api/auth/session.js';
import { telegramLoginHash } from '../../src/api/auth/telegram-login.js';
import { sleep } from '../../src/util/sleep.js';
import { stableMarketId } from '../../src/marketdata/sources/simulated.js';
import { splitInstrumentKey } from '../../src/contracts/catalog.js';
import { benchTemplate } from '../../src/bench/strategy-templates.js';

export interface SoakUser {
  readonly userId: string;
  /** `__Host-marketbus_session=<signed token>`, for HTTP requests and the WebSocket upgrade. */
  readonly cookie: string;
}

export interface SoakStrategy {
  readonly strategyId: string;
  readonly userId: string;
  readonly instrumentKey: string;
  readonly template: string;
}

/** A Login Widget payload signed as Telegram signs it, with the API's own `hash` rule. */
function signedLogin(botToken: string, fields: Record<string, string>): Record<string, string> {
  return { ...fields, hash: telegramLoginHash(fields, botToken) };
}

async function request(
  base: string,
  method: string,
  path: string,
  o: { cookie?: string; json?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown>; setCookie: string[] }> {
  const headers: Record<string, string> = {};
  if (o.cookie) headers['cookie'] = o.cookie;
  if (o.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: o.json === undefined ? null : JSON.stringify(o.json),
    redirect: 'manual',
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, body, setCookie: res.headers.getSetCookie() };
}

/** Sign `count` users in; user i is Telegram account 7,000,001 + i. */
export async function signInUsers(base: string, botToken: string, count: number): Promise<SoakUser[]> {
  const users: SoakUser[] = [];
  for (let i = 0; i < count; i++) {
    const payload = signedLogin(botToken, {
      id: String(7_000_001 + i),
      auth_date: String(Math.floor(Date.now() / 1000)),
      first_name: `Soak${i}`,
      username: `soak_user_${i}`,
    });
    const r = await request(base, 'POST', '/auth/telegram/login', { json: payload });
    const pair = r.setCookie
      .map((c) => c.split(';')[0] ?? '')
      .find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    if (r.status !== 200 || !pair || typeof r.body['user_id'] !== 'string')
      throw new Error(`sign-in of soak user ${i} failed: ${r.status} ${JSON.stringify(r.body)}`);
    users.push({ userId: r.body['user_id'], cookie: pair });
  }
  return users;
}

/**
 * Create and start `count` strategies, strategy i for user i mod users on instrument
 * `instruments[i * step]` (spread evenly over the list), on 1m candles.
 */
export async function createStrategies(
  base: string,
  users: readonly SoakUser[],
  instruments: readonly string[],
  count: number,
): Promise<SoakStrategy[]> {
  const step = Math.max(1, Math.floor(instruments.length / count));
  const out: SoakStrategy[] = [];
  for (let i = 0; i < count; i++) {
    const user = users[i % users.length] as SoakUser;
    const key = instruments[(i * step) % instruments.length] as string;
    const { symbol, marketType } = splitInstrumentKey(key);
    const t = benchTemplate(i);
    const created = await request(base, 'POST', '/strategies', {
      cookie: user.cookie,
      json: {
        name: `soak ${i} ${t.text}`,
        instrument_id: { market_id: stableMarketId(key), symbol },
        instrument_key: key,
        market_type: marketType,
        timeframe: '1m',
        indicators: [{ name: t.name, params: t.params }],
        signal_template: t.text,
      },
    });
    const id = created.body['strategy_id'];
    if (created.status !== 201 || typeof id !== 'string')
      throw new Error(`creating strategy ${i} failed: ${created.status} ${JSON.stringify(created.body)}`);
    const started = await request(base, 'POST', `/strategies/${id}/run`, { cookie: user.cookie });
    if (started.status !== 202)
      throw new Error(`starting strategy ${i} failed: ${started.status} ${JSON.stringify(started.body)}`);
    out.push({ strategyId: id, userId: user.userId, instrumentKey: key, template: t.text });
  }
  return out;
}

/** Wait until the API lists every strategy as running (the runner took the commands). */
export async function waitRunning(base: string, users: readonly SoakUser[], expected: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  let running = 0;
  while (Date.now() < deadline) {
    running = 0;
    for (const u of users) {
      const r = await request(base, 'GET', '/strategies', { cookie: u.cookie });
      const list = Array.isArray(r.body['strategies'])
        ? (r.body['strategies'] as Record<string, unknown>[])
        : [];
      running += list.filter((s) => s['status'] === 'running').length;
    }
    if (running >= expected) return;
    await sleep(500);
  }
  throw new Error(`only ${running} of ${expected} strategies are running after 60 s`);
}
