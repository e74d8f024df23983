/**
 * Attacks on the API's rate limits, quotas and page sizes (docs/security.md, "Rate limits and quotas"):
 * sign-in floods from one address (in-process, and against a real `marketbus up` behind a TCP forwarder
 * that rewrites nothing), a forged X-Forwarded-For to get a fresh budget, spreading a flood over two API
 * processes, write floods from one user, and filling the per-user quotas (strategies, running runs,
 * queued backtests); every refusal is 429 with `Retry-After` and a coded body, and the rest keeps
 * working: the same user's reads, other users, other addresses. Lists give at most the maximum page.
 * When Redis is down the limits fail open, so they do not add an outage of their own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import type { ApiService } from '../../src/app/start-api.js';
import { getStrategy, startRun } from '../../src/strategy/store.js';
import { silentLogger } from '../../src/util/log.js';
import { BOT_TOKEN, HttpClient, signedLoginPayload, startApi, testSettings } from '../helpers/api.js';
import { startForwarder } from '../helpers/forwarder.js';
import { startPostgres } from '../helpers/postgres.js';
import { redisOptions, startRedis, uniq, type TestRedis } from '../helpers/redis.js';
import { spawnUp, untilUp } from '../helpers/up-process.js';
import { SMOKE_STRATEGY } from '../helpers/fixtures.js';

const PAYLOAD = SMOKE_STRATEGY;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 5);

let db: RelationalDb;

beforeAll(async () => {
  db = openRelationalDb({ databaseUrl: (await startPostgres()).url }, silentLogger);
  await db.migrate();
});

afterAll(async () => {
  await db.close();
});

/** An API on a Redis of its own (so its counters start at zero), with these settings. */
async function api(env: NodeJS.ProcessEnv, server?: TestRedis): Promise<ApiService> {
  const redis = server ?? (await startRedis({ persistence: 'none' }));
  return startApi({
    redis: redisOptions(redis),
    db: db.sql,
    settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN, ...env }),
    commandWaitMs: 0,
  });
}

/** A Login Widget payload of a new Telegram user (each attempt a different, valid payload). */
const newUser = (): Record<string, string> =>
  signedLoginPayload(BOT_TOKEN, { id: String(Math.floor(Math.random() * 1e12)), username: uniq('u') });

/** `n` sign-ins at once; the statuses and the 429 answers. */
async function signIns(base: string, n: number, headers: () => Record<string, string> = () => ({})) {
  const res = await Promise.all(
    Array.from({ length: n }, () =>
      new HttpClient(base).request('POST', '/auth/telegram/login', { json: newUser(), headers: headers() }),
    ),
  );
  return { ok: res.filter((r) => r.status === 200).length, refused: res.filter((r) => r.status === 429) };
}

function expectRetryLater(r: { status: number; headers: Headers; body: unknown }, code: string): void {
  expect(r.status).toBe(429);
  expect(r.body).toMatchObject({ code, error: expect.any(String) as string });
  const after = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(after) && after >= 1 && after <= 60, `Retry-After ${after}`).toBe(true);
}

async function signedIn(base: string): Promise<HttpClient> {
  const c = new HttpClient(base);
  await c.login(BOT_TOKEN, { id: String(Math.floor(Math.random() * 1e12)), username: uniq('u') });
  return c;
}

describe('sign-in: per client address', () => {
  it('100 rapid sign-ins from one address: the first 10 pass, the other 90 get 429 + Retry-After', async () => {
    const a = await api({ RATE_LIMIT_LOGIN_PER_MIN: '10' });
    const { ok, refused } = await signIns(a.url, 100);
    expect(ok).toBe(10);
    expect(refused).toHaveLength(90);
    for (const r of refused) expectRetryLater(r, 'rate_limited');
    const metrics = await new HttpClient(a.url).get('/metrics');
    expect(metrics.text).toMatch(/^api_rate_limited_total\{limit="login"\} 90$/m);
  });

  it('a forged X-Forwarded-For, X-Real-IP or Forwarded does not give a fresh budget', async () => {
    const a = await api({ RATE_LIMIT_LOGIN_PER_MIN: '5' });
    expect((await signIns(a.url, 5)).ok).toBe(5);
    let n = 0;
    const forged = () => {
      n += 1;
      const ip = `198.51.100.${n}`;
      return { 'x-forwarded-for': ip, 'x-real-ip': ip, forwarded: `for=${ip}` };
    };
    const { ok, refused } = await signIns(a.url, 20, forged);
    expect(ok).toBe(0);
    expect(refused).toHaveLength(20);
  });

  it('TRUST_PROXY names the proxy: its clients count apart, and a forged left part changes nothing', async () => {
    // We are the proxy (127.0.0.1), appending the client's address like nginx's $proxy_add_x_forwarded_for.
    const a = await api({ RATE_LIMIT_LOGIN_PER_MIN: '3', TRUST_PROXY: '127.0.0.1' });
    const from = (client: string, forgedLeft?: string) => () => ({
      'x-forwarded-for': forgedLeft ? `${forgedLeft}, ${client}` : client,
    });
    expect((await signIns(a.url, 5, from('203.0.113.5'))).ok).toBe(3);
    let n = 0;
    const forgedLeft = () => from('203.0.113.5', `198.51.100.${++n}`)();
    expect((await signIns(a.url, 10, forgedLeft)).ok).toBe(0);
    // Another client behind the same proxy has its own budget.
    expect((await signIns(a.url, 5, from('203.0.113.6'))).ok).toBe(3);
  });

  it('two API processes on one Redis share the budget', async () => {
    const server = await startRedis({ persistence: 'none' });
    const one = await api({ RATE_LIMIT_LOGIN_PER_MIN: '10' }, server);
    const two = await api({ RATE_LIMIT_LOGIN_PER_MIN: '10' }, server);
    const [a, b] = await Promise.all([signIns(one.url, 15), signIns(two.url, 15)]);
    expect(a.ok + b.ok).toBe(10);
    expect(a.refused.length + b.refused.length).toBe(20);
  });

  it('a real `marketbus up` behind a forwarder that rewrites nothing: 100 sign-ins, 10 pass', async () => {
    const up = spawnUp(['--port', '0', '--speed', '600'], { env: { TELEGRAM_BOT_TOKEN: BOT_TOKEN } });
    const { api: url } = await untilUp(up);
    const fwd = await startForwarder(url);
    const { ok, refused } = await signIns(fwd.url, 100, () => ({ 'x-forwarded-for': uniq('1.2.3') }));
    expect(ok).toBe(10); // the default RATE_LIMIT_LOGIN_PER_MIN
    expect(refused).toHaveLength(90);
    for (const r of refused) expectRetryLater(r, 'rate_limited');
    // Straight to the API, from the same machine: the same address, the same spent budget.
    expect((await signIns(url, 3)).ok).toBe(0);
    up.child.kill('SIGTERM');
    await up.exit;
  });
});

describe('writes: per user', () => {
  it('a user past RATE_LIMIT_WRITES_PER_MIN gets 429; their reads and other users still work', async () => {
    const a = await api({ RATE_LIMIT_WRITES_PER_MIN: '5' });
    const alice = await signedIn(a.url);
    const bob = await signedIn(a.url);
    for (let i = 0; i < 5; i++) expect((await alice.post('/strategies', PAYLOAD)).status).toBe(201);
    expectRetryLater(await alice.post('/strategies', PAYLOAD), 'rate_limited');
    expectRetryLater(await alice.post('/auth/telegram/link'), 'rate_limited'); // one budget for all writes
    const list = await alice.get<{ strategies: unknown[] }>('/strategies');
    expect(list.status).toBe(200);
    expect(list.body.strategies).toHaveLength(5);
    expect((await bob.post('/strategies', PAYLOAD)).status).toBe(201);
  });

  it('fails open: with Redis down, a write that needs no Redis is answered at once, and counted', async () => {
    const server = await startRedis({ persistence: 'none' });
    const a = await api({}, server);
    await server.kill();
    const t0 = Date.now();
    const out = await new HttpClient(a.url).post('/auth/logout');
    expect(out.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(5000); // the count's 1 s budget, with margin
    const metrics = await new HttpClient(a.url).get('/metrics');
    expect(metrics.text).toMatch(/^api_rate_limit_errors_total [1-9]\d*$/m);
  });
});

describe('quotas: per user', () => {
  let a: ApiService;
  beforeAll(async () => {
    a = await api({
      MAX_STRATEGIES_PER_USER: '3',
      MAX_RUNNING_PER_USER: '1',
      MAX_QUEUED_BACKTESTS_PER_USER: '2',
      MAX_BACKTEST_DAYS: '30',
      QUOTA_RETRY_AFTER_S: '30',
      PAGE_LIMIT_MAX: '2',
    });
  });

  const quotaRefused = (
    r: { status: number; headers: Headers; body: unknown },
    quota: string,
    limit: number,
  ) => {
    expectRetryLater(r, 'quota_exceeded');
    expect(r.headers.get('retry-after')).toBe('30');
    expect(r.body).toMatchObject({ quota, limit: String(limit) });
  };

  it('strategies: the fourth is refused; the user still reads, other users still create', async () => {
    const alice = await signedIn(a.url);
    const bob = await signedIn(a.url);
    for (let i = 0; i < 3; i++) expect((await alice.post('/strategies', PAYLOAD)).status).toBe(201);
    quotaRefused(await alice.post('/strategies', PAYLOAD), 'strategies', 3);
    expect((await alice.get('/strategies')).status).toBe(200);
    expect((await bob.post('/strategies', PAYLOAD)).status).toBe(201);
  });

  it('strategies: 20 creates at once with room for 3 make exactly 3', async () => {
    const carol = await signedIn(a.url);
    const res = await Promise.all(Array.from({ length: 20 }, () => carol.post('/strategies', PAYLOAD)));
    expect(res.filter((r) => r.status === 201)).toHaveLength(3);
    for (const r of res.filter((x) => x.status !== 201)) quotaRefused(r, 'strategies', 3);
  });

  it('running runs: a second strategy is refused, re-running the running one is not; others run', async () => {
    const alice = await signedIn(a.url);
    const bob = await signedIn(a.url);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++)
      ids.push((await alice.post<{ strategy_id: string }>('/strategies', PAYLOAD)).body.strategy_id);
    const [first = '', second = ''] = ids;
    // The runner records a run when it starts one; here the store does what the runner would.
    const s = await getStrategy(db.sql, first);
    if (!s) throw new Error('strategy missing');
    await startRun(db.sql, s, PAYLOAD.instrument_key);
    quotaRefused(await alice.post(`/strategies/${second}/run`), 'running_runs', 1);
    expect((await alice.post(`/strategies/${first}/run`)).status).toBe(202);
    expect((await alice.post(`/strategies/${first}/stop`)).status).toBe(202);
    const b = await bob.post<{ strategy_id: string }>('/strategies', PAYLOAD);
    expect((await bob.post(`/strategies/${b.body.strategy_id}/run`)).status).toBe(202);
  });

  it('queued backtests: the third is refused until one is cancelled; ranges over the maximum are 400', async () => {
    const alice = await signedIn(a.url);
    const bob = await signedIn(a.url);
    const s = (await alice.post<{ strategy_id: string }>('/strategies', PAYLOAD)).body.strategy_id;
    const range = { from: T0, to: T0 + DAY };
    const queued: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await alice.post<{ id: string }>(`/strategies/${s}/backtests`, range);
      expect(r.status, r.text).toBe(202);
      queued.push(r.body.id);
    }
    quotaRefused(await alice.post(`/strategies/${s}/backtests`, range), 'queued_backtests', 2);
    expect((await alice.post(`/backtests/${queued[0] ?? ''}/cancel`)).status).toBe(200);
    expect((await alice.post(`/strategies/${s}/backtests`, range)).status).toBe(202);
    const long = await alice.post(`/strategies/${s}/backtests`, { from: T0, to: T0 + 31 * DAY });
    expect(long.status).toBe(400);
    expect(long.body).toMatchObject({ code: 'invalid_range' });
    // Lists are paged: at most PAGE_LIMIT_MAX (2) of the 3, then the rest after the cursor.
    const page = await alice.get<{ backtests: { id: string }[]; next_after: string | null }>(
      `/strategies/${s}/backtests?limit=1000`,
    );
    expect(page.body.backtests).toHaveLength(2);
    const rest = await alice.get<{ backtests: { id: string }[]; next_after: string | null }>(
      `/strategies/${s}/backtests?after=${page.body.next_after ?? ''}`,
    );
    expect(rest.body.backtests).toHaveLength(1);
    expect(rest.body.next_after).toBeNull();
    const b = (await bob.post<{ strategy_id: string }>('/strategies', PAYLOAD)).body.strategy_id;
    expect((await bob.post(`/strategies/${b}/backtests`, range)).status).toBe(202);
  });

  it('a page larger than the maximum is capped, the rest comes after the cursor', async () => {
    const alice = await signedIn(a.url);
    const made: string[] = [];
    for (let i = 0; i < 3; i++)
      made.push((await alice.post<{ strategy_id: string }>('/strategies', PAYLOAD)).body.strategy_id);
    type Page = { strategies: { strategy_id: string }[]; next_after: string | null };
    const first = await alice.get<Page>('/strategies?limit=100000');
    expect(first.body.strategies.map((x) => x.strategy_id)).toEqual(made.slice(0, 2));
    const second = await alice.get<Page>(`/strategies?after=${first.body.next_after ?? ''}`);
    expect(second.body.strategies.map((x) => x.strategy_id)).toEqual(made.slice(2));
    expect(second.body.next_after).toBeNull();
    expect((await alice.get('/strategies?limit=0')).status).toBe(400);
    const events = await alice.get<{ events: unknown[] }>(`/strategies/${made[0] ?? ''}/events?limit=100000`);
    expect(events.status).toBe(200);
  });
});
