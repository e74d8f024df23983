/**
 * Attacks on the live relay (`/api/v1/live/ws`, docs/security.md "The live relay"), each tried as an
 * attacker would and refused:
 *
 * - subscribing to instrument keys no feed serves (to make the shared reader read arbitrary streams):
 *   answered `instrument_not_served`, no stream is read, the socket keeps working for served ones;
 * - holding more subscriptions than allowed (per connection, per user across connections, per
 *   process): answered `too_many_subscriptions` / `relay_full`, the connection stays open;
 * - subscribe/unsubscribe requests faster than the per-connection rate: `subscribe_rate_limited` with
 *   `retry_after_ms`, the connection stays open;
 * - N parallel upgrades of one user to pass the per-user connection limit: at most the limit open, the
 *   others 429, slots given back when connections close;
 * - subscribe/unsubscribe churn by user A (test/helpers/churn-worker.ts, its own process, reconnecting
 *   whenever closed) while user B receives a price stream published every 10 ms: B's delivery delay
 *   (XADD → receipt) is measured with and without the churn in the same test, with the default limits
 *   and with the per-connection limits lifted (only the reader's coalescing protects then).
 *   Measured on the 2-core test machine while other test runs shared it (load average about 12): B's p99
 *   was 31–53 ms quiet and 450–462 ms under churn with the default limits, and 7–63 ms quiet and
 *   150–343 ms under churn with the limits lifted. Rebuilds were 29–51 in 4 s, against 6,600–22,000 for
 *   the relay before this change. Asserted: p99 under churn below 2000 ms (CHURN_P99_BOUND_MS) and at
 *   most one rebuild per 50 ms interval (+10).
 * - the same against a real `marketbus up` (simulated feed, `sim:spot:BTCUSDT`) through a TCP
 *   forwarder that rewrites nothing, signed in with a Telegram payload: an unserved instrument refused
 *   with its code, the served one delivered on the same socket, and parallel upgrades beyond
 *   `LIVE_MAX_CONNECTIONS_PER_USER` refused.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ApiService } from '../../src/app/start-api.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { streams } from '../../src/contracts/catalog.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { silentLogger } from '../../src/util/log.js';
import {
  announceFeed,
  BOT_TOKEN,
  HttpClient,
  LiveSocket,
  startApi,
  testSettings,
  type LiveMessage,
} from '../helpers/api.js';
import { startForwarder } from '../helpers/forwarder.js';
import { connect, redisOptions, startRedis, uniq, waitFor, type TestRedis } from '../helpers/redis.js';
import { spawnUp, untilUp, UP_INSTRUMENT } from '../helpers/up-process.js';

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

const FEED = uniq('feed');
const served: string[] = [];
/** New instrument keys, announced as served by this file's feed status. */
async function serve(n = 1): Promise<string[]> {
  const keys = Array.from({ length: n }, () => `sim:spot:${uniq('R').toUpperCase()}`);
  served.push(...keys);
  await announceFeed(redis, FEED, served);
  return keys;
}

async function api(live: Record<string, unknown> = {}): Promise<ApiService> {
  return startApi({
    redis: redisOptions(server),
    db: db.sql,
    settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
    live: { blockMs: 1000, served: { missRefreshMs: 0 }, ...live },
  });
}

async function signIn(base: string, id: string): Promise<HttpClient> {
  const c = new HttpClient(base);
  await c.login(BOT_TOKEN, { id, username: `u${id}` });
  return c;
}

/** Send and wait for the answer (`subscribed`, `unsubscribed` or `error`) carrying the same id. */
async function ask(s: LiveSocket, msg: Record<string, unknown>): Promise<LiveMessage> {
  const id = uniq('q');
  const at = s.messages.length;
  s.send({ ...msg, id });
  return s.next((m) => m.id === id && typeof m.op === 'string', 10_000, at);
}

async function stillUsable(s: LiveSocket): Promise<void> {
  const at = s.messages.length;
  s.send({ op: 'ping' });
  await s.next((m) => m.op === 'pong', 5000, at);
  expect(s.closeCode).toBeUndefined();
}

function price(k: string, n: number): Record<string, string> {
  return { instrument_key: k, bid: String(n), ask: String(n + 1), sent_at: String(Date.now()) };
}

/** Open `n` upgrades of one user at once; how many opened and the statuses of the refused ones. */
async function parallelUpgrades(
  base: string,
  cookie: string,
  n: number,
): Promise<{ open: WebSocket[]; refused: number[] }> {
  const url = `${base.replace(/^http/, 'ws')}/api/v1/live/ws`;
  const results = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<WebSocket | number>((resolve) => {
          const ws = new WebSocket(url, { headers: { cookie } });
          ws.once('open', () => resolve(ws));
          ws.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
          ws.once('error', () => resolve(-1));
        }),
    ),
  );
  return {
    open: results.filter((r): r is WebSocket => typeof r !== 'number'),
    refused: results.filter((r): r is number => typeof r === 'number'),
  };
}

describe('the live relay refuses what no feed serves', () => {
  it('an unserved instrument is refused with instrument_not_served; the socket still works for a served one', async () => {
    const a = await api();
    const alice = await signIn(a.url, '910001');
    const s = await LiveSocket.open(a.url, alice.cookie);
    const [k = ''] = await serve();
    const before = (await a.liveMetrics.streams.get()).values[0]?.value ?? 0;
    for (const msg of [
      { op: 'subscribe', channel: 'prices', instrument: 'binance:spot:NOSUCHUSDT' },
      { op: 'subscribe', channel: 'candles', instrument: 'sim:spot:NOTSERVED', timeframe: '5m' },
      { op: 'subscribe', channel: 'prices', instrument: 'attacker:spot:ANYTHING', from: '0' },
    ]) {
      const r = await ask(s, msg);
      expect(r, JSON.stringify(msg)).toMatchObject({ op: 'error', code: 'instrument_not_served' });
    }
    // nothing was added to the shared reader
    expect((await a.liveMetrics.streams.get()).values[0]?.value ?? 0).toBe(before);
    expect(await ask(s, { op: 'subscribe', channel: 'prices', instrument: k })).toMatchObject({
      op: 'subscribed',
      stream: streams.prices(k),
    });
    const id = await redis.xAdd(streams.prices(k), '*', price(k, 1));
    expect((await s.next((m) => m.id === id)).stream).toBe(streams.prices(k));
    await stillUsable(s);
    // once a feed announces the instrument, it is served
    const late = `sim:spot:${uniq('LATE').toUpperCase()}`;
    expect((await ask(s, { op: 'subscribe', channel: 'prices', instrument: late })).code).toBe(
      'instrument_not_served',
    );
    served.push(late);
    await announceFeed(redis, FEED, served);
    expect((await ask(s, { op: 'subscribe', channel: 'prices', instrument: late })).op).toBe('subscribed');
    s.close();
    await a.close();
  });
});

describe('caps and rates are answered with coded errors, not closes', () => {
  it('per connection, per user across connections, and per process', async () => {
    const a = await api({ maxSubscriptions: 3, maxSubscriptionsPerUser: 4, maxSubscriptionsTotal: 6 });
    const keys = await serve(8);
    const k = (i: number): string => keys[i] ?? '';
    const alice = await signIn(a.url, '910011');
    const bob = await signIn(a.url, '910012');
    const a1 = await LiveSocket.open(a.url, alice.cookie);
    const a2 = await LiveSocket.open(a.url, alice.cookie);
    const b1 = await LiveSocket.open(a.url, bob.cookie);
    const sub = (s: LiveSocket, i: number): Promise<LiveMessage> =>
      ask(s, { op: 'subscribe', channel: 'prices', instrument: k(i) });
    for (const i of [0, 1, 2]) expect((await sub(a1, i)).op).toBe('subscribed');
    expect(await sub(a1, 3)).toMatchObject({ op: 'error', code: 'too_many_subscriptions' });
    expect((await sub(a2, 3)).op).toBe('subscribed');
    // alice holds 4 over two connections: the per-user cap
    const over = await sub(a2, 4);
    expect(over).toMatchObject({ op: 'error', code: 'too_many_subscriptions' });
    expect(String(over['message'])).toMatch(/per user/);
    // bob fills the process (6 in total), then is refused with relay_full
    for (const i of [4, 5]) expect((await sub(b1, i)).op).toBe('subscribed');
    expect(await sub(b1, 6)).toMatchObject({ op: 'error', code: 'relay_full' });
    // a refused subscription delivers nothing; slots come back on unsubscribe and on close
    expect((await ask(a1, { op: 'unsubscribe', channel: 'prices', instrument: k(0) })).op).toBe(
      'unsubscribed',
    );
    expect((await sub(b1, 6)).op).toBe('subscribed');
    a2.close();
    await waitFor(() => a.liveClients === 2, 5000, 'a2 closed');
    expect((await sub(a1, 7)).op).toBe('subscribed');
    const id = await redis.xAdd(streams.prices(k(7)), '*', price(k(7), 7));
    await a1.next((m) => m.id === id);
    for (const s of [a1, b1]) await stillUsable(s);
    a1.close();
    b1.close();
    await a.close();
  });

  it('subscribe/unsubscribe requests over the rate get subscribe_rate_limited with retry_after_ms', async () => {
    const a = await api({ subscribeMessages: 5, subscribeWindowMs: 60_000 });
    const [k = ''] = await serve();
    const c = await signIn(a.url, '910021');
    const s = await LiveSocket.open(a.url, c.cookie);
    const answers: LiveMessage[] = [];
    for (let i = 0; i < 4; i++) {
      answers.push(await ask(s, { op: 'subscribe', channel: 'prices', instrument: k }));
      answers.push(await ask(s, { op: 'unsubscribe', channel: 'prices', instrument: k }));
    }
    expect(answers.slice(0, 5).map((m) => m.op)).toEqual([
      'subscribed',
      'unsubscribed',
      'subscribed',
      'unsubscribed',
      'subscribed',
    ]);
    for (const m of answers.slice(5)) {
      expect(m).toMatchObject({ op: 'error', code: 'subscribe_rate_limited' });
      expect(m['retry_after_ms']).toBeGreaterThan(50_000);
    }
    await stillUsable(s);
    // the subscription made before the limit still delivers
    const id = await redis.xAdd(streams.prices(k), '*', price(k, 1));
    await s.next((m) => m.id === id);
    s.close();
    await a.close();
  });
});

describe('parallel upgrades of one user count against the connection limit', () => {
  it('30 upgrades at once: at most the limit open, the rest 429; closed ones give their slots back', async () => {
    const a = await api({ maxClientsPerUser: 3 });
    const c = await signIn(a.url, '910031');
    const first = await parallelUpgrades(a.url, c.cookie ?? '', 30);
    expect(first.open).toHaveLength(3);
    expect(first.refused).toEqual(Array.from({ length: 27 }, () => 429));
    for (const ws of first.open) ws.close();
    await waitFor(() => a.liveClients === 0, 5000, 'closed');
    const again = await parallelUpgrades(a.url, c.cookie ?? '', 10);
    expect(again.open).toHaveLength(3);
    for (const ws of again.open) ws.terminate();
    await a.close();
  });
});

/** p-quantile of `xs`, ms. */
function quantile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
}

interface ChurnResult {
  /** B's p99 delay XADD → receipt without churn, then under churn, ms. */
  readonly quiet: number;
  readonly underChurn: number;
  readonly rebuilds: number;
  readonly churnMs: number;
  readonly requests: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly closes: number;
}

/**
 * User B subscribes to one served price stream, published every 10 ms; B's delay is measured for 3 s
 * without churn, then for 4 s while user A (test/helpers/churn-worker.ts, its own process) churns with
 * `connections` connections over 300 served instruments.
 */
async function measureChurn(a: ApiService, connections: number, label: string): Promise<ChurnResult> {
  const keys = await serve(300);
  const [bKey = ''] = await serve();
  const userA = await signIn(a.url, String(9_105_000 + Math.floor(Math.random() * 1000)));
  const userB = await signIn(a.url, String(9_106_000 + Math.floor(Math.random() * 1000)));
  const b = await LiveSocket.open(a.url, userB.cookie);
  expect((await ask(b, { op: 'subscribe', channel: 'prices', instrument: bKey })).op).toBe('subscribed');
  const delays = new Map<string, number>();
  b.ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString('utf8')) as LiveMessage;
    const sent = Number(m.fields?.['sent_at']);
    if (typeof m.id === 'string' && Number.isFinite(sent)) delays.set(m.id, Date.now() - sent);
  });
  const publish = async (ms: number): Promise<string[]> => {
    const ids: string[] = [];
    const end = Date.now() + ms;
    for (let n = 0; Date.now() < end; n++) {
      ids.push(await redis.xAdd(streams.prices(bKey), '*', price(bKey, n)));
      await new Promise((r) => setTimeout(r, 10));
    }
    return ids;
  };
  const p99Of = async (ids: readonly string[]): Promise<number> => {
    await waitFor(() => ids.every((id) => delays.has(id)), 20_000, "B's entries");
    return quantile(
      ids.map((id) => delays.get(id) ?? Infinity),
      0.99,
    );
  };
  const quiet = await p99Of(await publish(3000));

  const worker = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/churn-worker.ts'], {
    env: {
      ...process.env,
      WS_URL: `${a.url.replace(/^http/, 'ws')}/api/v1/live/ws`,
      COOKIE: userA.cookie ?? '',
      KEYS: keys.join(','),
      CONNECTIONS: String(connections),
      BATCH: '25',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  worker.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('ready'), 30_000, 'the churn worker');
  const rebuildsBefore = (await a.liveMetrics.rebuilds.get()).values[0]?.value ?? 0;
  const t0 = Date.now();
  const churnIds = await publish(4000);
  const churnMs = Date.now() - t0;
  const rebuilds = ((await a.liveMetrics.rebuilds.get()).values[0]?.value ?? 0) - rebuildsBefore;
  worker.kill('SIGTERM');
  await once(worker, 'exit');
  const last = out.trim().split('\n').pop() ?? '{}';
  const { requests, errors, closes } = JSON.parse(last) as Pick<
    ChurnResult,
    'requests' | 'errors' | 'closes'
  >;
  const underChurn = await p99Of(churnIds);
  console.log(
    `relay churn (${label}): A sent ${requests} requests on ${connections} connections (${closes} closed by the server, errors ${JSON.stringify(errors)}); ` +
      `B p99 ${quiet} ms quiet, ${underChurn} ms under churn; ${rebuilds} reader rebuilds in ${churnMs} ms`,
  );
  // B got every entry, in order
  const got = b.entries(streams.prices(bKey)).map((m) => m.id);
  expect(got.slice(-churnIds.length)).toEqual(churnIds);
  b.close();
  return { quiet, underChurn, rebuilds, churnMs, requests, errors, closes };
}

/** The bound on B's p99 under churn (see the file header for what was measured), ms. */
const CHURN_P99_BOUND_MS = 2000;

describe("one user's churn does not starve another user's deliveries", () => {
  it('with the default limits: A, as fast as it can on all its connections, is rate limited; B stays fast', async () => {
    const a = await api({ blockMs: 5000 });
    const r = await measureChurn(a, 20, 'default limits');
    expect(r.requests).toBeGreaterThan(2000);
    expect(r.errors['subscribe_rate_limited'] ?? 0).toBeGreaterThan(0);
    expect(r.rebuilds).toBeLessThanOrEqual(r.churnMs / 50 + 10);
    expect(r.underChurn).toBeLessThan(CHURN_P99_BOUND_MS);
    await a.close();
  });

  it('with the per-connection limits lifted: reader rebuilds are coalesced, at most one per interval', async () => {
    const INTERVAL_MS = 50;
    const a = await api({
      rebuildIntervalMs: INTERVAL_MS,
      // Only the reader's coalescing protects here: the per-connection limits let A through.
      floodMessages: 1_000_000,
      subscribeMessages: 1_000_000,
      maxSubscriptionsPerUser: 1_000_000,
      blockMs: 5000,
    });
    const r = await measureChurn(a, 10, 'limits lifted');
    expect(r.requests).toBeGreaterThan(10_000);
    expect(r.errors).toEqual({});
    expect(r.rebuilds).toBeLessThanOrEqual(r.churnMs / INTERVAL_MS + 10);
    expect(r.underChurn).toBeLessThan(CHURN_P99_BOUND_MS);
    await a.close();
  });
});

describe('against a real marketbus up through a TCP forwarder', () => {
  it('unserved instruments refused with a code, the served one delivered; parallel upgrades capped', async () => {
    const up = spawnUp(['--port', '0'], {
      env: { TELEGRAM_BOT_TOKEN: BOT_TOKEN, LIVE_MAX_CONNECTIONS_PER_USER: '2' },
    });
    const { api: apiUrl } = await untilUp(up);
    const fwd = await startForwarder(apiUrl);
    const c = await signIn(fwd.url, '910051');
    const s = await LiveSocket.open(fwd.url, c.cookie);
    expect(
      await ask(s, { op: 'subscribe', channel: 'prices', instrument: 'binance:spot:BTCUSDT' }),
    ).toMatchObject({ op: 'error', code: 'instrument_not_served' });
    expect(
      await ask(s, { op: 'subscribe', channel: 'candles', instrument: 'sim:spot:DOGEUSDT' }),
    ).toMatchObject({ op: 'error', code: 'instrument_not_served' });
    // the simulated feed serves sim:spot:BTCUSDT (once its first status is out)
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await ask(s, { op: 'subscribe', channel: 'prices', instrument: UP_INSTRUMENT });
      if (r.op === 'subscribed') break;
      expect(r.code).toBe('instrument_not_served');
      if (Date.now() > deadline) throw new Error('the simulated feed never announced its instrument');
      await new Promise((done) => setTimeout(done, 500)); // the feed's first status comes within 5 s
    }
    await s.next((m) => m.op === undefined && m.stream === streams.prices(UP_INSTRUMENT), 20_000);
    // one connection is open: of 10 parallel upgrades only one more opens
    const p = await parallelUpgrades(fwd.url, c.cookie ?? '', 10);
    expect(p.open).toHaveLength(1);
    expect(p.refused).toEqual(Array.from({ length: 9 }, () => 429));
    for (const ws of p.open) ws.terminate();
    await stillUsable(s);
    s.close();
    up.child.kill('SIGTERM');
    await up.exit;
    await fwd.close();
  }, 180_000);
});
