/**
 * `marketbus up` as a process (the built CLI in dist/: run `npx tsc -p tsconfig.json` first): a start
 * that fails half-way closes everything it started and the process ends by itself; the embedded
 * redis-server is restarted on the same port when it dies, with no candle lost from the stream or the
 * history, with its password, the functions library (from the AOF) and BullMQ's scripts (reloaded);
 * a connection without the password is refused; a redis-server that keeps dying stops `up` with a
 * coded message.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { closeRedis, connectRedis, type RedisClient } from '../../src/bus/connection.js';
import { openRelationalDb } from '../../src/app/open-db.js';
import { silentLogger } from '../../src/util/log.js';
import { waitFor } from '../helpers/redis.js';
import {
  embeddedPasswordFile,
  running,
  spawnUp,
  untilUp,
  UP_INSTRUMENT,
  type Up,
} from '../helpers/up-process.js';
import { bullScripts } from '../../src/backtest/bull-scripts.js';
import { FUNCTIONS_VERSION } from '../../src/bus/functions.js';
import { sendCommand } from '../../src/bus/raw-command.js';
import { isProcessAlive } from '../../src/util/process.js';

const KEY = UP_INSTRUMENT;
const STREAM = `md.candles.1m.${KEY}`;
const MINUTE = 60_000;

/** The pid the embedded redis-server wrote in `<data_dir>/redis/redis.pid`. */
function redisPid(dir: string): number | undefined {
  const f = join(dir, '.marketbus', 'redis', 'redis.pid');
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

function listening(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

/** The stream IDs are `<ts_open ms>-0`: consecutive 1m candles are one minute apart. */
function gaps(tsOpens: readonly number[]): string[] {
  const out: string[] = [];
  for (let i = 1; i < tsOpens.length; i++) {
    const a = tsOpens[i - 1] ?? 0;
    const b = tsOpens[i] ?? 0;
    if (b - a !== MINUTE) out.push(`${new Date(a).toISOString()} -> ${new Date(b).toISOString()}`);
  }
  return out;
}

async function streamOpens(redis: RedisClient): Promise<number[]> {
  const entries = await redis.xRange(STREAM, '-', '+');
  return entries.map((e) => {
    const ts = Date.parse(e.message['ts_open'] ?? '');
    expect(ts, `ts_open of ${e.id}`).toBe(Number(e.id.split('-')[0]));
    return ts;
  });
}

/** Kill the current embedded redis-server and wait until another one runs and answers. */
async function killRedis(up: Up, redis: RedisClient): Promise<{ pid: number; backMs: number }> {
  const old = redisPid(up.dir);
  if (old === undefined || !isProcessAlive(old)) throw new Error('no embedded redis-server pid');
  const t0 = Date.now();
  process.kill(old, 'SIGKILL');
  await waitFor(
    async () => {
      if (!running(up)) return true;
      const pid = redisPid(up.dir);
      if (pid === undefined || pid === old || !isProcessAlive(pid)) return false;
      return (await redis.ping().catch(() => '')) === 'PONG';
    },
    30_000,
    'the embedded redis-server back',
  );
  return { pid: redisPid(up.dir) ?? 0, backMs: Date.now() - t0 };
}

describe('marketbus up lifecycle', () => {
  it('a start that fails half-way (API port taken) closes everything and exits by itself', async () => {
    const blocker: Server = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const addr = blocker.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    try {
      const up = spawnUp(['--port', String(port), '--speed', '600']);
      const code = await up.exit; // no signal sent: it must end because nothing is left open
      const err = up.stderr();
      expect(code, err.slice(-2000)).toBe(1);
      expect(err).toContain(`marketbus: the API cannot listen on 127.0.0.1:${port}`);
      expect(err).toContain('[PORT_IN_USE]');
      expect(err).not.toContain('OPEN_HANDLES');
      expect(err).not.toMatch(/\n\s+at /);
      // The feed had started, and was closed again; then the redis-server.
      expect(err).toContain('feed started');
      expect(err).toContain('feed stopped');
      const started = /"url":"redis:\/\/127\.0\.0\.1:(\d+)".*"pid":(\d+).*embedded redis-server started/.exec(
        err,
      );
      expect(started, 'redis-server start logged').not.toBeNull();
      expect(isProcessAlive(Number(started?.[2]))).toBe(false);
      expect(await listening(Number(started?.[1]))).toBe(false);
      expect(existsSync(join(up.dir, '.marketbus', 'redis.url'))).toBe(false);
    } finally {
      blocker.close();
    }
  }, 180_000);

  it('a SIGKILLed embedded redis-server is back on the same port; feed and runner go on; no candle is missing', async () => {
    const up = spawnUp(['--port', '0', '--speed', '600']);
    const { redisUrl, api, devLogin } = await untilUp(up);
    const redis = await connectRedis({ url: redisUrl }, silentLogger);
    try {
      // The embedded server has a password, in a file only its owner reads, never in the banner;
      // a connection without it is refused.
      const password = readFileSync(embeddedPasswordFile(up.dir), 'utf8').trim();
      expect(password).toMatch(/^[0-9a-f]{64}$/);
      expect(statSync(embeddedPasswordFile(up.dir)).mode & 0o777).toBe(0o600);
      expect(statSync(join(up.dir, '.marketbus', 'redis.url')).mode & 0o777).toBe(0o600);
      expect(up.stderr()).not.toContain(password);
      const port = Number(new URL(redisUrl).port);
      const once = async (url: string): Promise<unknown> => {
        const c = createClient({ url, socket: { reconnectStrategy: false } });
        c.on('error', () => undefined);
        try {
          await c.connect();
          return await c.ping();
        } catch (err) {
          return err;
        } finally {
          if (c.isOpen) c.destroy();
        }
      };
      expect(String(await once(`redis://127.0.0.1:${port}`))).toMatch(/NOAUTH/);
      expect(String(await once(`redis://:${'0'.repeat(64)}@127.0.0.1:${port}`))).toMatch(/WRONGPASS/);
      // maxmemory is set (the default of --redis-maxmemory), with noeviction.
      expect(await redis.configGet('maxmemory')).toEqual({ maxmemory: String(512 * 1024 * 1024) });
      expect(await redis.configGet('maxmemory-policy')).toEqual({ 'maxmemory-policy': 'noeviction' });
      // Signed in with the one-time link up printed (no bot token: development sign-in).
      const signIn = await fetch(devLogin ?? `${api}/auth/dev`, { redirect: 'manual' });
      expect(signIn.status).toBe(303);
      const cookie = signIn.headers.getSetCookie()[0]?.split(';')[0] ?? '';
      // A running strategy on the instrument, so the runner reads its candles.
      const created = await fetch(`${api}/strategies`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie },
        body: JSON.stringify({
          instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
          instrument_key: KEY,
          market_type: 'spot',
          timeframe: '1m',
          indicators: [{ name: 'MA', params: { fast: 2, slow: 3 } }],
          signal_template: 'MA(2,3)',
        }),
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const { strategy_id } = (await created.json()) as { strategy_id: string };
      const run = await fetch(`${api}/strategies/${strategy_id}/run`, {
        method: 'POST',
        headers: { cookie },
      });
      expect([200, 201, 202]).toContain(run.status);
      const acked = async (): Promise<number> => {
        const text = await (await fetch(`${api}/metrics`)).text();
        return Number(/^strategy_live_runner_messages_acked_total (\d+)/m.exec(text)?.[1] ?? 0);
      };
      await waitFor(async () => (await acked()) > 0 || !running(up), 60_000, 'runner acks');
      await waitFor(async () => (await redis.xLen(STREAM)) >= 5 || !running(up), 60_000, 'candles');

      const before = await redis.xLen(STREAM);
      const ackedBefore = await acked();
      const { backMs } = await killRedis(up, redis);
      expect(running(up), up.stderr().slice(-2000)).toBe(true);
      expect(backMs).toBeLessThan(15_000);
      // The PING that ended killRedis went to the URL up printed at start: the same port.
      // Both go on: new candles in the stream, new acknowledgements by the runner.
      await waitFor(async () => (await redis.xLen(STREAM)) >= before + 20, 60_000, 'candles after restart');
      await waitFor(async () => (await acked()) > ackedBefore + 5, 60_000, 'runner acks after restart');
      const metrics = await (await fetch(`${api}/metrics`)).text();
      expect(metrics).toMatch(/^marketbus_embedded_redis_restarts_total 1$/m);
      // The restarted server has the same password (the URL above still works), the functions
      // library back from its AOF, and BullMQ's scripts loaded again by the supervisor.
      expect(String(await sendCommand(redis, ['FCALL_RO', 'marketbus_version', '0']))).toBe(
        FUNCTIONS_VERSION,
      );
      const shas = bullScripts().map((x) => x.sha);
      await waitFor(
        async () =>
          ((await sendCommand(redis, ['SCRIPT', 'EXISTS', ...shas])) as unknown[]).every(
            (e) => Number(e) === 1,
          ),
        10_000,
        'BullMQ scripts reloaded',
      );
      expect(up.stderr()).toContain('embedded redis-server restarted');

      const opens = await streamOpens(redis);
      expect(gaps(opens)).toEqual([]);

      up.child.kill('SIGTERM');
      expect(await up.exit).toBe(0);
      // The history has every candle the stream has (the writer flushes at close), in one run.
      const db = openRelationalDb({ dataDir: join(up.dir, '.marketbus') }, silentLogger);
      try {
        const first = opens[0] ?? 0;
        const last = opens.at(-1) ?? 0;
        const stored = await db.candles.range(KEY, first, last + MINUTE);
        const storedOpens = stored.filter((c) => c.timeframe === '1m').map((c) => c.tsOpen);
        expect(gaps(storedOpens)).toEqual([]);
        expect(storedOpens[0]).toBe(first);
        expect(storedOpens.length).toBeGreaterThanOrEqual(opens.length);
      } finally {
        await db.close();
      }
    } finally {
      await closeRedis(redis);
    }
  }, 300_000);

  it('a redis-server that keeps dying past the limit stops up, non-zero, with the reason', async () => {
    const up = spawnUp(['--port', '0', '--speed', '600', '--redis-max-restarts', '2']);
    const { redisUrl } = await untilUp(up);
    const redis = await connectRedis({ url: redisUrl }, silentLogger);
    try {
      await killRedis(up, redis);
      await killRedis(up, redis);
      const last = redisPid(up.dir);
      expect(last !== undefined && isProcessAlive(last)).toBe(true);
      process.kill(last ?? 0, 'SIGKILL'); // the third death within the window: no more restarts
      const code = await up.exit;
      const err = up.stderr();
      expect(code, err.slice(-2000)).toBe(1);
      expect(err).toMatch(
        /marketbus: the embedded redis-server on port \d+ died 3 times within 60 s \(at most 2 restarts allowed\).*\[EMBEDDED_REDIS_FAILED\]/,
      );
      expect(err).not.toContain('OPEN_HANDLES');
      expect(err).toContain('feed stopped');
      expect(existsSync(join(up.dir, '.marketbus', 'redis.url'))).toBe(false);
      expect(await listening(Number(new URL(redisUrl).port))).toBe(false);
    } finally {
      await closeRedis(redis);
    }
  }, 300_000);
});
