/**
 * One `marketbus feed` process with the instruments of every venue the conformance suite knows
 * (`test/conformance/sources/harnesses.ts`), each venue's `market_data.sources.<venue>` pointing at its
 * local server, for a few real minutes: every `md.candles.1m.<key>` stream is exactly its server's
 * canonical candles (one minute of each server's first key comes only from REST, its close never
 * sent), each venue has its `md.status.<venue>` in STREAM, and seed 002's Python consumer
 * (`test/contract/seed002_consumer.py`, unchanged) reads one stream of every venue.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { streams } from '../../src/contracts/catalog.js';
import { candleCodec } from '../../src/contracts/market-data.js';
import { canonicalNumbers, numbersOf } from '../conformance/sources/collector.js';
import { HARNESSES } from '../conformance/sources/harnesses.js';
import type { FakeVenueServer } from '../conformance/sources/venue-harness.js';
import { connect, redisEnv, startRedis, TEST_TOPOLOGY, waitFor } from '../helpers/redis.js';

const M = 60_000;
/** Minutes closed while the feed runs. */
const MINUTES = 3;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}

/** Resolve at real time `t` (the fakes' market clock is the real one here). */
function until(t: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
}

function yamlOf(instruments: readonly string[], servers: readonly [string, FakeVenueServer][]): string {
  const lines = [
    'market_data:',
    '  max_history_calls_per_min: 600',
    '  status_interval_seconds: 1',
    '  instruments:',
    ...instruments.map((k) => `    - ${JSON.stringify(k)}`),
    '  sources:',
  ];
  for (const [venue, server] of servers) {
    lines.push(`    ${venue}:`);
    for (const [k, v] of Object.entries(server.settings)) lines.push(`      ${k}: ${JSON.stringify(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('marketbus feed with every venue', () => {
  it(`one process, ${HARNESSES.length} venue(s), ${MINUTES} real minutes: every stream equals its server's candles; the seed 002 consumer reads each venue`, async () => {
    const redisServer = await startRedis({ persistence: 'none' });
    const redis = await connect(redisServer);
    const servers: [string, FakeVenueServer][] = [];
    for (const h of HARNESSES) {
      const s = await h.start(Date.now);
      closers.push(() => s.close());
      servers.push([h.venue, s]);
    }
    const keysOf = new Map(HARNESSES.map((h) => [h.venue, h.keys]));
    const all = HARNESSES.flatMap((h) => h.keys);
    const dir = mkdtempSync(join(tmpdir(), 'mbvenues-'));
    const cfg = join(dir, 'config.yaml');
    writeFileSync(cfg, yamlOf(all, servers));

    // The consumers make their groups at `$` first: they read what the feed publishes from then on.
    const consumers = HARNESSES.map((h) => {
      const key = h.keys[0] ?? '';
      const py = spawn('/usr/bin/python3', ['test/contract/seed002_consumer.py'], {
        env: {
          ...process.env,
          REDIS_HOST: '127.0.0.1',
          REDIS_PORT: String(redisServer.port),
          REDIS_CLUSTER: TEST_TOPOLOGY === 'cluster' ? '1' : '',
          INSTRUMENT_KEY: key,
          GROUP: 'strategy.py_venues',
          COUNT: String(MINUTES),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      closers.push(async () => {
        if (py.exitCode === null) py.kill('SIGKILL');
        await exited(py);
      });
      const out = { stdout: '', stderr: '' };
      py.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
      py.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
      return { key, py, out, done: exited(py) };
    });
    for (const c of consumers) {
      await waitFor(
        async () => c.py.exitCode !== null || (await redis.exists(streams.candles('1m', c.key))) === 1,
        20_000,
        `the python group on ${c.key}`,
      );
      expect(c.py.exitCode, c.out.stderr).toBeNull();
    }

    const feed = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'feed', '--config', cfg, '--metrics-port', '0'],
      {
        env: { ...process.env, ...redisEnv(redisServer), LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    feed.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const feedExit = exited(feed);
    closers.push(async () => {
      if (feed.exitCode === null) feed.kill('SIGKILL');
      await feedExit;
    });

    // Started from source with tsx on a loaded machine: the start alone can take many seconds.
    const waiting = new Map(servers.map(([venue]) => [venue, [...(keysOf.get(venue) ?? [])]]));
    const subscribed = (): boolean => {
      const open = Math.floor(Date.now() / M) * M;
      for (const [venue, s] of servers) {
        waiting.set(
          venue,
          (waiting.get(venue) ?? []).filter((k) => s.pushOpen(k, open) === 0),
        );
      }
      return [...waiting.values()].every((w) => w.length === 0) || feed.exitCode !== null;
    };
    try {
      await waitFor(subscribed, 60_000, 'every key subscribed');
    } catch (err) {
      throw new Error(`${String(err)}; not yet: ${JSON.stringify([...waiting])}; feed stderr: ${stderr}`);
    }
    expect(feed.exitCode, stderr).toBeNull();

    // Quotes flow all along, as on the venues (a feed with no ticks calls its instruments stale).
    let quote = 0;
    const quotes = setInterval(() => {
      quote += 1;
      const bid = (100 + (quote % 50) / 10).toFixed(2);
      const ask = (100.5 + (quote % 50) / 10).toFixed(2);
      for (const [venue, s] of servers) for (const k of keysOf.get(venue) ?? []) s.pushQuote(k, bid, ask);
    }, 1000);
    closers.push(() => Promise.resolve(clearInterval(quotes)));

    // The test is the exchange: it closes each minute 300 ms after it ends. The second minute of each
    // server's first key is never sent: the feed's late check fetches it from REST.
    const first = Math.floor(Date.now() / M) * M;
    for (let i = 0; i < MINUTES; i += 1) {
      const t = first + i * M;
      await until(t + M + 300);
      for (const [venue, s] of servers) {
        for (const [j, k] of (keysOf.get(venue) ?? []).entries()) {
          if (i === 1 && j === 0) continue;
          expect(s.pushClose(k, t), `close of ${k} reached a socket`).toBeGreaterThan(0);
        }
      }
    }
    for (const k of all) {
      await waitFor(
        async () => (await redis.xLen(streams.candles('1m', k))) >= MINUTES,
        40_000,
        `${MINUTES} candles on ${k}`,
      );
    }

    for (const [venue, s] of servers) {
      for (const k of keysOf.get(venue) ?? []) {
        const entries = await redis.xRange(streams.candles('1m', k), '-', '+');
        const got = entries.map((e) => numbersOf(candleCodec.decode(e.message).candle));
        const want = canonicalNumbers(s, k, first, first + (MINUTES - 1) * M);
        expect(want).toHaveLength(MINUTES);
        expect(got, `stream of ${k}`).toEqual(want);
      }
      const latest = async (): Promise<string | undefined> =>
        (await redis.xRevRange(streams.feedStatus(venue), '+', '-', { COUNT: 1 }))[0]?.message['state'];
      await waitFor(async () => (await latest()) === 'STREAM', 10_000, `md.status.${venue} STREAM`);
    }

    for (const c of consumers) {
      expect(await c.done, c.out.stderr).toBe(0);
      const lines = c.out.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; close: string });
      expect(lines).toHaveLength(MINUTES);
      const entries = await redis.xRange(streams.candles('1m', c.key), '-', '+');
      expect(lines.map((l) => l.id)).toEqual(entries.map((e) => e.id));
      expect(lines.map((l) => l.close)).toEqual(entries.map((e) => e.message['close']));
    }

    feed.kill('SIGINT');
    expect(await feedExit, stderr).toBe(0);
  }, 420_000);
});
