/**
 * Least privilege against a real redis-server: `marketbus redis acl` creates the users (--apply, the
 * ACL file and the SETUSER lines give the same users), then every service runs as its own user on its
 * real code paths (feed -> runner -> API relay, sessions, run commands, backtests through BullMQ and
 * the backtesting service, the operator CLI's streams and dlq commands) and Redis's ACL LOG must stay
 * empty: a command or key a service uses without a rule fails here, even where the service swallows
 * the error. Then each user is refused with NOPERM outside its rights.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { Registry } from 'prom-client';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricSum, sineCandles } from '../helpers/fixtures.js';
import type { AclUser } from '../../src/acl/rules.js';
import { ACL_USERS } from '../../src/acl/rules.js';
import { passwordEnvVar } from '../../src/acl/secrets.js';
import type { ApiService } from '../../src/app/start-api.js';
import { CATALOG_POLICY, streams } from '../../src/contracts/catalog.js';
import { closeRedis, connectRedis } from '../../src/bus/connection.js';
import { StreamProducer } from '../../src/bus/producer.js';
import { isNoPermReply } from '../../src/bus/redis-errors.js';
import { RedisServer, type RedisServerOptions } from '../../src/bus/redis-server.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { ConfigError } from '../../src/util/errors.js';
import { RedisPermissionError } from '../../src/bus/errors.js';
import { startBacktester } from '../../src/app/backtester.js';
import { request } from '../../src/commands/client.js';
import { silentLogger } from '../../src/util/log.js';
import { resolveMarketData, startFeed } from '../../src/app/feed.js';
import { startRunner } from '../../src/app/runner.js';
import { dlqCommand } from '../../src/cli/commands/dlq.js';
import { redisCommand } from '../../src/cli/commands/redis.js';
import { streamsCommand } from '../../src/cli/commands/streams.js';
import {
  BOT_TOKEN,
  HttpClient,
  LiveSocket,
  signedLoginPayload,
  startApi,
  testSettings,
} from '../helpers/api.js';
import { runCli } from '../helpers/cli.js';
import { uniq, waitFor } from '../helpers/redis.js';
import { LocalRedisCluster } from '../helpers/redis-cluster.js';
import { bullScripts } from '../../src/backtest/bull-scripts.js';
import { ensureFunctions, functionName, RedisCodeNotLoadedError } from '../../src/bus/functions.js';
import { holdLease, releaseLease } from '../../src/bus/lease.js';
import { addOnce } from '../../src/bus/monotonic.js';
import { publishOnce } from '../../src/commands/reply-once.js';

const M = 60_000;
const KEY = `sim:spot:${uniq('L').toUpperCase()}`;
const BT_KEY = `binance:spot:${uniq('B').toUpperCase()}`;
const T0 = Date.UTC(2026, 0, 5);
const WEBHOOK_SECRET = 'acl-hook-secret_0123456789';
const passwords = Object.fromEntries(ACL_USERS.map((u) => [u, randomBytes(18).toString('hex')])) as Record<
  AclUser,
  string
>;
const passwordEnv = Object.fromEntries(ACL_USERS.map((u) => [passwordEnvVar(u), passwords[u]]));

type Raw = ReturnType<typeof createClient>;
const raws: Raw[] = [];
const servers: RedisServer[] = [];

/**
 * A plain redis-server, whatever topology the rest of the suite runs on: ACL users live per server
 * (a cluster gets the same file on every node), and this file reads ACL LOG and ACL LIST of one.
 */
async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const s = await RedisServer.start({ persistence: 'none', ...opts });
  servers.push(s);
  return s;
}
let server: RedisServer;
let admin: Raw;
let db: RelationalDb;

function userUrl(u: AclUser): string {
  return `redis://${u}:${passwords[u]}@127.0.0.1:${server.port}`;
}

/** A plain node-redis client (raw commands for ACL administration and refusals); no reconnecting. */
async function raw(url: string): Promise<Raw> {
  const c = createClient({ url, socket: { reconnectStrategy: false } });
  c.on('error', () => undefined);
  await c.connect();
  raws.push(c);
  return c;
}

interface AclLogEntry {
  readonly username: string;
  readonly reason: string;
  readonly context: string;
  readonly object: string;
}

async function aclLog(c: Raw): Promise<AclLogEntry[]> {
  const reply = await c.sendCommand<unknown[][]>(['ACL', 'LOG', '128']);
  return reply.map((flat) => {
    const m = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) m.set(String(flat[i]), String(flat[i + 1]));
    return {
      username: m.get('username') ?? '',
      reason: m.get('reason') ?? '',
      context: m.get('context') ?? '',
      object: m.get('object') ?? '',
    };
  });
}

/**
 * The users of ACL LIST (without `default`), each line with its rules sorted within the root and within
 * each selector (Redis lists a user's commands in no fixed order).
 */
async function aclList(c: Raw): Promise<string[]> {
  const lines = await c.sendCommand<string[]>(['ACL', 'LIST']);
  return lines
    .filter((l) => !l.startsWith('user default '))
    .map((l) => {
      const root = l.slice(0, l.includes('(') ? l.indexOf('(') : l.length).trim();
      const selectors = [...l.matchAll(/\(([^)]*)\)/g)].map((m) => `(${sortWords(m[1] ?? '')})`);
      return [sortWords(root), ...selectors].join(' ');
    })
    .sort();
}

const sortWords = (s: string): string => s.split(' ').filter(Boolean).sort().join(' ');

/**
 * `marketbus <args>` in this process, with the real command builders (a child process per command is
 * too slow on a loaded machine); returns what it wrote to stdout. `env` is set for the call.
 */
async function marketbus(args: readonly string[], env: Record<string, string> = {}): Promise<string> {
  const program = new Command('marketbus')
    .option('--redis <url>')
    .option('--config <file>')
    .exitOverride()
    .addCommand(redisCommand())
    .addCommand(streamsCommand())
    .addCommand(dlqCommand());
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string | Uint8Array): boolean => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  };
  try {
    await program.parseAsync([...args], { from: 'user' });
  } finally {
    process.stdout.write = write;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Reflect.deleteProperty(process.env, k);
      else process.env[k] = v;
    }
  }
  return out;
}

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  admin = await raw(server.url);
  db = openRelationalDb({}, silentLogger); // PGlite in memory
  await db.migrate();
  // The real binary once: users applied with the passwords of the environment. The other commands
  // run in this process (a child process costs seconds on a loaded machine).
  const applied = await runCli(['redis', 'acl', '--apply'], {
    env: { REDIS_URL: server.url, ...passwordEnv },
  });
  expect(applied.code, applied.stderr).toBe(0);
  for (const u of ACL_USERS) expect(applied.stdout).toContain(`applied ACL user ${u}`);
});

afterAll(async () => {
  await Promise.allSettled(raws.map((c) => c.close()));
  await db.close();
  await Promise.allSettled(servers.map((x) => x.dispose()));
});

describe('marketbus redis acl', () => {
  it('the ACL file, the ACL SETUSER lines and --apply create the same users', async () => {
    const file = await marketbus(['redis', 'acl'], passwordEnv);
    const commands = await marketbus(['redis', 'acl', '--format', 'commands'], passwordEnv);
    const missing = await marketbus(['redis', 'acl', '--service', 'api,ops'], {
      [passwordEnvVar('ops')]: passwords.ops,
    }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ConfigError);
    expect((missing as ConfigError).key).toBe('MARKETBUS_REDIS_PASSWORD_API');
    // Only hashes leave the process, never a password.
    for (const p of Object.values(passwords)) {
      expect(file).not.toContain(p);
      expect(commands).not.toContain(p);
    }

    const dir = mkdtempSync(join(tmpdir(), 'marketbus-acl-'));
    const aclfile = join(dir, 'users.acl');
    writeFileSync(aclfile, file);
    const fromFile = await startRedis({ persistence: 'none', extraArgs: ['--aclfile', aclfile] });
    const fromCli = await startRedis({ persistence: 'none' });
    const cli = spawnSync('redis-cli', ['-p', String(fromCli.port)], {
      input: commands,
      encoding: 'utf8',
    });
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout.trim().split('\n')).toEqual(ACL_USERS.map(() => 'OK'));

    const expected = await aclList(admin);
    expect(expected).toHaveLength(ACL_USERS.length);
    expect(await aclList(await raw(fromFile.url))).toEqual(expected);
    expect(await aclList(await raw(fromCli.url))).toEqual(expected);
    // Each user can sign in with its password (and only with it).
    const feed = await raw(`redis://feed:${passwords.feed}@127.0.0.1:${fromFile.port}`);
    expect(await feed.ping()).toBe('PONG');
    await expect(raw(`redis://feed:${passwords.api}@127.0.0.1:${fromFile.port}`)).rejects.toThrow(
      /WRONGPASS/,
    );
  });

  it('every service works as its own user, and Redis logs no refusal', async () => {
    await admin.sendCommand(['ACL', 'LOG', 'RESET']);
    const closers: (() => Promise<unknown>)[] = [];
    try {
      // Stored history for the backtests (the backtester reads candles from the store, not Redis).
      await db.candles.insert(sineCandles(BT_KEY, 600, T0));

      // feed: simulated candles, prices and status, with its history writer
      const feedRegistry = new Registry();
      const feed = await startFeed({
        md: resolveMarketData(
          { price_snap_interval_seconds: 1, status_interval_seconds: 1 },
          { source: 'simulated', instruments: [KEY], speed: 600 },
        ),
        redis: { url: userUrl('feed') },
        registry: feedRegistry,
        log: silentLogger,
        history: db.candles,
      });
      closers.push(() => feed.close());

      // API: sessions, chat links, live relay, run commands, backtest jobs, bus health
      const api: ApiService = await startApi({
        redis: { url: userUrl('api') },
        db: db.sql,
        settings: testSettings({
          TELEGRAM_BOT_TOKEN: BOT_TOKEN,
          TELEGRAM_BOT_USERNAME: 'marketbus_acl_bot',
          TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
        }),
        live: { blockMs: 500 },
        commandWaitMs: 10_000,
      });
      closers.push(() => api.close());
      const alice = new HttpClient(api.url);
      const me = await alice.login(BOT_TOKEN, { id: '411001', username: 'alice' });
      expect((await alice.get('/auth/current-user')).status).toBe(200);
      const link = await alice.post<{ token: string }>('/auth/telegram/link');
      expect(link.status, link.text).toBe(200);
      const hook = await alice.request<{ text?: string }>('POST', '/telegram/webhook', {
        json: {
          update_id: 1,
          message: {
            message_id: 1,
            date: Math.floor(Date.now() / 1000),
            chat: { id: 411001, type: 'private' },
            from: { id: 411001, is_bot: false, first_name: 'A' },
            text: `/start ${link.body.token}`,
          },
        },
        headers: { 'x-telegram-bot-api-secret-token': WEBHOOK_SECRET },
      });
      expect(hook.body.text).toMatch(/^Done/);

      // A backtest queued and cancelled before any backtester runs: the API drops the job and announces it.
      const btStrategy = await alice.post<{ strategy_id: string }>('/strategies', strategyPayload(BT_KEY));
      expect(btStrategy.status, btStrategy.text).toBe(201);
      const range = { from: new Date(T0 + 100 * M).toISOString(), to: new Date(T0 + 600 * M).toISOString() };
      const early = await alice.post<{ id: string }>(
        `/strategies/${btStrategy.body.strategy_id}/backtests`,
        range,
      );
      expect(early.status, early.text).toBe(202);
      const cancelled = await alice.post<{ status: string }>(`/backtests/${early.body.id}/cancel`);
      expect(cancelled.body.status).toBe('cancelled');

      // runner and backtester
      const runnerRegistry = new Registry();
      const runner = await startRunner({
        redis: { url: userUrl('runner') },
        db: db.sql,
        candles: db.candles,
        registry: runnerRegistry,
        log: silentLogger,
        syncIntervalMs: 200,
        notifyMode: 'log_only',
      });
      closers.push(() => runner.close());
      const backtester = await startBacktester({
        redis: { url: userUrl('backtester') },
        db: db.sql,
        candles: db.candles,
        log: silentLogger,
        concurrency: 1,
        heartbeatMs: 500,
      });
      closers.push(() => backtester.close());

      // The live relay: candles of the feed and the user's own events. The relay takes subscriptions
      // only to instruments a feed's status names, so the first status comes first.
      await waitFor(
        async () => (await admin.xLen(streams.feedStatus('simulated'))) > 0,
        20_000,
        'the feed status',
      );
      const ws = await LiveSocket.open(api.url, alice.cookie);
      const candleStream = streams.candles('1m', KEY);
      ws.send({ op: 'subscribe', channel: 'candles', instrument: KEY, timeframe: '1m', from: '0' });
      ws.send({ op: 'subscribe', channel: 'events' });
      const s = await alice.post<{ strategy_id: string }>('/strategies', strategyPayload(KEY));
      const run = await alice.post<{ status: string; run_id: string }>(
        `/strategies/${s.body.strategy_id}/run`,
      );
      expect(run.status, run.text).toBe(202);
      expect(run.body.status).toBe('running'); // the runner answered, through the API's relay reader
      await ws.until(() => ws.entries(candleStream).length >= 5, 20_000, 'candles on the relay');
      await ws.until(
        () => ws.entries(streams.strategyEvents(me.user_id)).length >= 1,
        20_000,
        'the started event on the relay',
      );
      await waitFor(
        async () => (await admin.xLen(streams.strategyMetrics(me.user_id))) >= 5,
        20_000,
        'runner metrics',
      );
      const events = await alice.get<{ events: unknown[] }>(`/strategies/${s.body.strategy_id}/events`);
      expect(events.status, events.text).toBe(200);
      expect(events.body.events.length).toBeGreaterThan(0);
      const health = await alice.get<{ streams: { stream: string }[] }>('/api/v1/streams');
      expect(health.status, health.text).toBe(200);
      expect(health.body.streams.map((x) => x.stream)).toContain(candleStream);
      // The API's /metrics looks at the bus (bus_health_*) with the same read-only rights.
      const scrape = await alice.get('/metrics');
      expect(scrape.status).toBe(200);
      expect(scrape.text).toMatch(/^bus_health_up 1$/m);
      // Snapshots and status come on their own intervals: wait for them rather than race them.
      await waitFor(async () => (await admin.xLen(streams.prices(KEY))) > 0, 20_000, 'price snapshots');
      await waitFor(
        async () => (await admin.xLen(streams.feedStatus('simulated'))) > 0,
        20_000,
        'feed status',
      );

      // A backtest through the API and BullMQ, run by the backtester; one command to its service.
      const bt = await alice.post<{ id: string }>(
        `/strategies/${btStrategy.body.strategy_id}/backtests`,
        range,
      );
      expect(bt.status, bt.text).toBe(202);
      await waitFor(
        async () => (await alice.get<{ status: string }>(`/backtests/${bt.body.id}`)).body.status === 'done',
        20_000,
        'backtest done',
      );
      const requester = await connectRedis({ url: server.url });
      closers.push(() => closeRedis(requester));
      const got = await request(requester, 'backtesting', 'backtest.get', {
        backtest_id: bt.body.id,
        include_result: false,
      });
      expect(got.backtest.status).toBe('done');

      // Sessions as the api user: a second one, sign out everywhere (the per-user index), a replay.
      const phone = new HttpClient(api.url);
      const phonePayload = signedLoginPayload(BOT_TOKEN, {
        id: '411001',
        username: 'alice',
        first_name: 'P',
      });
      expect((await phone.post('/auth/telegram/login', phonePayload)).status).toBe(200);
      expect((await new HttpClient(api.url).post('/auth/telegram/login', phonePayload)).status).toBe(401);
      const all = await alice.post<{ ended: number }>('/auth/logout-all');
      expect(all.body.ended).toBe(2);
      expect((await phone.get('/auth/current-user')).status).toBe(401);

      // A malformed command: the runner dead-letters it; the operator lists, replays and purges it.
      const commands = streams.serviceCommands('strategy');
      const dlq = streams.deadLetters(commands);
      await admin.xAdd(commands, '*', { garbage: 'yes' });
      await waitFor(async () => (await admin.xLen(dlq)) === 1, 10_000, 'dead letter');
      const ops = ['--redis', userUrl('ops')];
      const report = JSON.parse(await marketbus([...ops, 'streams', 'inspect', '--json'])) as {
        streams: { stream: string }[];
      };
      expect(report.streams.map((x) => x.stream)).toEqual(expect.arrayContaining([candleStream, dlq]));
      expect(await marketbus([...ops, 'dlq', 'list', commands, '--json'])).toMatch(
        /^\{[^\n]*"garbage"[^\n]*\}\n$/,
      );
      expect(await marketbus([...ops, 'streams', 'trim'])).toMatch(/stream\(s\)/);
      const tail = await marketbus([...ops, 'streams', 'tail', candleStream, '--from', '0', '--count', '2']);
      expect(tail.trim().split('\n')).toHaveLength(2);
      const tailGroup = await marketbus([
        ...ops,
        ...['streams', 'tail', 'strategy:status', '--group', 'ops.tail', '--from', '0', '--count', '1'],
      ]);
      expect(tailGroup.trim().split('\n')).toHaveLength(1);
      expect(await marketbus([...ops, 'dlq', 'replay', commands])).toContain('replayed 1');
      // Still malformed: the runner dead-letters it again.
      await waitFor(async () => (await admin.xLen(dlq)) === 1, 10_000, 'dead letter again');
      expect(await marketbus([...ops, 'dlq', 'purge', commands])).toContain('purged 1');

      // sign-out deletes the session
      expect((await alice.post('/auth/logout')).status).toBe(200);
      expect((await alice.get('/auth/current-user')).status).toBe(401);

      ws.close();
      for (const close of closers.splice(0).reverse()) await close();
      expect(await metricSum(feedRegistry, 'redis_publish_errors_total')).toBe(0);
      expect(await metricSum(runnerRegistry, 'strategy_realtime_output_publish_errors_total')).toBe(0);
    } catch (err) {
      // What Redis refused says which rule is missing.
      throw new Error(`${String(err)}; ACL LOG: ${JSON.stringify(await aclLog(admin))}`, { cause: err });
    } finally {
      for (const close of closers.reverse()) await close().catch(() => undefined);
    }
    // Everything above ran, started and stopped without one refusal. (node-redis sends CLIENT SETINFO
    // on connect and ignores its failure; Redis 7.0 does not know it, 7.2+ refuses it: not ours.)
    const refused = (await aclLog(admin)).filter((e) => e.object !== 'client|setinfo');
    expect(refused).toEqual([]);
  });

  it('each user is refused with NOPERM outside its rights', async () => {
    const candles = streams.candles('1m', KEY);
    const prices = streams.prices(KEY);
    const events = streams.strategyEvents('someone');
    const session = 'api:session:0000';
    const refused: Record<AclUser, string[][]> = {
      feed: [
        ['XADD', events, '*', 'a', '1'],
        ['GET', session],
        ['XRANGE', candles, '-', '+'],
        ['XGROUP', 'CREATE', candles, 'g', '$'],
        ['XTRIM', candles, 'MAXLEN', '0'],
        ['DEL', candles],
        ['XADD', streams.serviceCommands('strategy'), '*', 'a', '1'],
      ],
      runner: [
        ['XADD', prices, '*', 'a', '1'],
        ['XADD', streams.serviceCommands('backtesting'), '*', 'a', '1'],
        ['GET', session],
        ['XDEL', candles, '1-0'],
        ['SET', streams.serviceResults('strategy'), 'x'],
        ['XADD', streams.serviceResults('backtesting'), '*', 'a', '1'],
        ['HGETALL', 'bull:backtests:meta'],
      ],
      api: [
        ['XADD', candles, '*', 'a', '1'],
        ['XADD', prices, '*', 'a', '1'],
        ['XADD', events, '*', 'a', '1'],
        ['XGROUP', 'CREATE', candles, 'g', '$'],
        ['XADD', streams.serviceCommands('backtesting'), '*', 'a', '1'],
        ['SET', `lease:{${candles}}`, 'me'],
        ['DEL', streams.deadLetters(candles)],
      ],
      backtester: [
        ['XRANGE', candles, '-', '+'],
        ['XADD', events, '*', 'a', '1'],
        ['GET', session],
        ['XADD', streams.serviceCommands('strategy'), '*', 'a', '1'],
      ],
      ops: [
        ['GET', session],
        ['XADD', candles, '*', 'a', '1'],
        ['SET', `lease:{${candles}}`, 'me'],
        ['HGETALL', 'bull:backtests:meta'],
        ['GET', `cp:{${candles}}:strategy.live_runner`],
      ],
    };
    const everyone = [
      ['FLUSHALL'],
      ['CONFIG', 'GET', 'maxmemory'],
      ['ACL', 'SETUSER', 'evil', 'on', 'nopass', '~*', '+@all'],
      ['KEYS', '*'],
      ['PUBLISH', 'news', 'x'],
      ['SHUTDOWN', 'NOSAVE'],
    ];
    for (const u of ACL_USERS) {
      const c = await raw(userUrl(u));
      for (const argv of [...refused[u], ...everyone]) {
        const err = await c.sendCommand(argv).then(
          () => null,
          (e: unknown) => e,
        );
        expect(isNoPermReply(err), `${u}: ${argv.join(' ')} -> ${String(err)}`).toBe(true);
      }
    }

    // The operator's commands as another user: refused (and proof that --redis picks the user).
    const asFeed = await marketbus(['--redis', userUrl('feed'), 'streams', 'trim']).catch((e: unknown) => e);
    expect(isNoPermReply(asFeed), String(asFeed)).toBe(true);

    // Through the real producer: the runner cannot publish candles, and the error says why.
    const runner = await connectRedis({ url: userUrl('runner') });
    try {
      const err = await new StreamProducer(runner, { policy: CATALOG_POLICY })
        .publish(candles, { a: '1' }, { id: `${Date.now()}-0` })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisPermissionError); // typed: a deployment problem, not an outage
      expect((err as RedisPermissionError).code).toBe('REDIS_NOPERM');
      expect(isNoPermReply((err as RedisPermissionError).cause)).toBe(true);
    } finally {
      await closeRedis(runner);
    }
    // No Lua of their own: EVAL, SCRIPT LOAD and FUNCTION LOAD are refused to every service user, so
    // none can make Redis BUSY for all; ops installs code but runs none.
    await expectNoOwnLua(server.port);
    // A function gives no more rights: keys outside the user's FCALL selectors are refused, and a
    // write inside a function to a key its caller may not write is refused too.
    const scripted = await raw(userUrl('runner'));
    const forged = streams.candles('1m', 'sim:spot:FORGED');
    const outside = await scripted
      .sendCommand([
        'FCALL',
        functionName('add_once'),
        '2',
        forged,
        `hwm:{${forged}}`,
        'k',
        '1',
        'none',
        '0',
        'a',
        '1',
      ])
      .catch((e: unknown) => e);
    expect(isNoPermReply(outside), String(outside)).toBe(true);
    expect(await admin.xLen(forged)).toBe(0);
    // BullMQ's scripts run by SHA on the queue's keys only.
    const api = await raw(userUrl('api'));
    const [bull] = bullScripts();
    const bullOutside = await api
      .sendCommand(['EVALSHA', bull?.sha ?? '', '1', session])
      .catch((e: unknown) => e);
    expect(isNoPermReply(bullOutside), String(bullOutside)).toBe(true);
    expect(await admin.ping()).toBe('PONG'); // nobody shut it down
  });
});

/** Every service user (and ops, which may load code) is refused EVAL, SCRIPT LOAD and loading functions. */
async function expectNoOwnLua(port: number): Promise<void> {
  const own = [
    ['EVAL', 'while true do end', '0'],
    ['EVAL_RO', 'return 1', '0'],
    ['SCRIPT', 'LOAD', 'while true do end'],
    [
      'FUNCTION',
      'LOAD',
      "#!lua name=evil\nredis.register_function('spin', function() while true do end end)",
    ],
    ['FUNCTION', 'FLUSH'],
    ['FUNCTION', 'DELETE', 'marketbus'],
  ];
  for (const u of ACL_USERS) {
    const c = await raw(`redis://${u}:${passwords[u]}@127.0.0.1:${port}`);
    for (const argv of own) {
      // The operator's step loads code (it may not run it: no FCALL, EVAL or EVALSHA).
      if (u === 'ops' && argv[1] === 'LOAD') continue;
      const err = await c.sendCommand(argv).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isNoPermReply(err), `${u}: ${argv.slice(0, 2).join(' ')} -> ${String(err)}`).toBe(true);
    }
  }
}

describe('on a Redis Cluster', () => {
  it('acl --apply loads the functions on every master; the users run them with FCALL and no Lua of their own', async () => {
    const cluster = await LocalRedisCluster.start({ masters: 3, replicasPerMaster: 0 });
    try {
      const applied = await marketbus(['redis', 'acl', '--apply'], {
        REDIS_URL: cluster.url,
        REDIS_CLUSTER: 'true',
        ...passwordEnv,
      });
      expect(applied).toMatch(/loaded functions library marketbus version \w+ on 3 server\(s\)/);
      const masters = await cluster.masters();
      for (const m of masters) await expectNoOwnLua(m.port);
      const admins = await Promise.all(masters.map((m) => raw(m.url)));
      for (const a of admins) await a.sendCommand(['ACL', 'LOG', 'RESET']);

      const as = (u: AclUser) => connectRedis({ ...cluster.options, username: u, password: passwords[u] });
      const runner = await as('runner');
      try {
        // The runner's start check passes without loading (it may not), then its functions run on
        // keys of every master: leases, exactly-once outputs, once-only replies.
        await ensureFunctions(runner);
        const users = Array.from({ length: 12 }, () => uniq('u'));
        for (const u of users) {
          const ev = streams.strategyEvents(u);
          expect(
            await addOnce(runner, { stream: ev, key: 'r:signal', seq: 1, fields: { a: '1' } }),
          ).not.toBeNull();
          expect(
            await addOnce(runner, { stream: ev, key: 'r:signal', seq: 1, fields: { a: '1' } }),
          ).toBeNull();
          const lease = streams.candles('1m', `sim:spot:${u.toUpperCase()}`);
          expect(await holdLease(runner, lease, 'me', 10_000)).toBe(true);
          expect(await releaseLease(runner, lease, 'me')).toBe(true);
        }
        const results = streams.serviceResults('strategy');
        expect((await publishOnce(runner, results, uniq('c'), { ok: '1' })).added).toBe(true);
        for (const a of admins) {
          const refused = (await aclLog(a)).filter((e) => e.object !== 'client|setinfo');
          expect(refused).toEqual([]);
        }

        // A master that lost the library (flushed by an admin): the runner may not load it, and says
        // what to run, with a code.
        for (const a of admins) await a.sendCommand(['FUNCTION', 'FLUSH']);
        const missing = await addOnce(runner, {
          stream: streams.strategyEvents(users[0] ?? ''),
          key: 'r:signal',
          seq: 2,
          fields: { a: '1' },
        }).catch((e: unknown) => e);
        expect(missing).toBeInstanceOf(RedisCodeNotLoadedError);
        expect((missing as RedisCodeNotLoadedError).code).toBe('REDIS_CODE_NOT_LOADED');
        expect(String(missing)).toContain('marketbus redis functions load');
        // The ops step puts it back on every master.
        const ops = await marketbus(['redis', 'functions', 'load'], {
          REDIS_URL: `redis://ops:${passwords.ops}@127.0.0.1:${cluster.port}`,
          REDIS_CLUSTER: 'true',
        });
        expect(ops).toContain('on 3 server(s)');
        await ensureFunctions(runner);
      } finally {
        await closeRedis(runner);
      }
    } finally {
      await cluster.dispose();
    }
  });
});

function strategyPayload(key: string): Record<string, unknown> {
  return {
    instrument_id: { market_id: 1, symbol: key.split(':')[2] },
    instrument_key: key,
    market_type: 'spot',
    timeframe: '1m',
    indicators: [{ name: 'MA', params: { fast: 3, slow: 8 } }],
    signal_template: 'MA(3,8)',
  };
}
