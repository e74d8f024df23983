import { sendCommand } from '../../src/bus/raw-command.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/bus/connection.js';
import { moveToDeadLetter } from '../../src/bus/dead-letter.js';
import { parsePendingSummary } from '../../src/bus/replies.js';
import { runCli } from '../helpers/cli.js';
import { connect, startRedis, uniq, type TestRedis } from '../helpers/redis.js';

let server: TestRedis;
let redis: RedisClient;

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
});

describe('marketbus CLI', () => {
  it('streams inspect --json reports groups, pending and lag', async () => {
    const s = `mgmt:${uniq()}:commands`;
    for (let i = 1; i <= 5; i++) await redis.xAdd(s, `${i}-0`, { i: String(i) });
    await redis.xGroupCreate(s, 'g', '0');
    await redis.xReadGroup('g', 'c1', [{ key: s, id: '>' }], { COUNT: 2 });
    const r = await runCli(['streams', 'inspect', '--match', s, '--json', '--redis', server.url]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      streams: { stream: string; length: number; groups: { name: string; pending: number; lag: number }[] }[];
    };
    expect(doc.streams).toHaveLength(1);
    expect(doc.streams[0]).toMatchObject({
      stream: s,
      length: 5,
      groups: [{ name: 'g', pending: 2, lag: 3 }],
    });
    const table = await runCli(['streams', 'inspect', '--match', s], { env: { REDIS_URL: server.url } });
    expect(table.stdout).toMatch(/STREAM\s+LENGTH/);
    expect(table.stdout).toContain(s);
  });

  it('streams tail prints JSON lines; with a group it acks what it printed', async () => {
    const s = `mgmt:${uniq()}:commands`;
    for (let i = 1; i <= 5; i++) await redis.xAdd(s, `${i}-0`, { i: String(i) });
    const plain = await runCli(['streams', 'tail', s, '--from', '0', '--count', '3', '--redis', server.url]);
    expect(plain.code, plain.stderr).toBe(0);
    const lines = plain.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual([
      { stream: s, id: '1-0', fields: { i: '1' } },
      { stream: s, id: '2-0', fields: { i: '2' } },
      { stream: s, id: '3-0', fields: { i: '3' } },
    ]);
    const grouped = await runCli([
      'streams',
      'tail',
      s,
      '--group',
      'readers',
      '--consumer',
      'me',
      '--from',
      '0',
      '--count',
      '2',
      '--redis',
      server.url,
    ]);
    expect(grouped.code, grouped.stderr).toBe(0);
    expect(grouped.stdout.trim().split('\n')).toHaveLength(2);
    const pending = parsePendingSummary(await sendCommand(redis, ['XPENDING', s, 'readers']));
    // the two printed entries were acked; nothing printed is left pending
    const rest = (await redis.xRange(s, '-', '+')).map((e) => e.id);
    expect(rest).toHaveLength(5);
    expect(pending.minId === null || pending.minId > '2-0').toBe(true);
  });

  it('dlq list, replay --to and purge', async () => {
    const s = `mgmt:${uniq()}:commands`;
    const id = await redis.xAdd(s, '*', { a: '1' });
    await redis.xGroupCreate(s, 'g', '0');
    await redis.xReadGroup('g', 'c', [{ key: s, id: '>' }]);
    await moveToDeadLetter(redis, {
      stream: s,
      group: 'g',
      entryId: id,
      consumer: 'c',
      deliveries: 5,
      reason: 'max-deliveries',
      error: new Error('boom'),
      fields: { a: '1' },
    });
    const list = await runCli(['dlq', 'list', s, '--json', '--redis', server.url]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout.trim())).toMatchObject({
      stream: s,
      entryId: id,
      group: 'g',
      reason: 'max-deliveries',
      error: 'boom',
      fields: { a: '1' },
    });
    const target = `mgmt:${uniq()}:commands`;
    const replay = await runCli(['dlq', 'replay', s, '--to', target, '--redis', server.url]);
    expect(replay.stdout).toContain('replayed 1');
    expect((await redis.xRange(target, '-', '+'))[0]?.message).toEqual({ a: '1' });
    await moveToDeadLetter(redis, {
      stream: s,
      group: 'g',
      entryId: id,
      consumer: 'c',
      deliveries: 1,
      reason: 'decode',
      error: new Error('x'),
      fields: {},
    });
    const purge = await runCli(['dlq', 'purge', s, '--redis', server.url]);
    expect(purge.stdout).toContain('purged 1');
  });

  it('refuses to replay into a candle stream (IDs derived from data) with a clear error', async () => {
    const s = 'md.candles.1m.sim:spot:BTCUSDT';
    const r = await runCli(['dlq', 'replay', s, '--redis', server.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DLQ_REPLAY_REFUSED/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('bad input: a bad URL, an unreachable Redis, a broken config each get one clear line', async () => {
    const badUrl = await runCli(['streams', 'inspect', '--redis', 'ftp://x']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/redis\.url.*redis:\/\//);
    const down = await runCli(['streams', 'inspect', '--redis', 'redis://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1.*REDIS_UNAVAILABLE/);
    const dir = mkdtempSync(join(tmpdir(), 'mbcfg-'));
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'redis:\n  port: "six"\n');
    const broken = await runCli(['streams', 'inspect', '--config', cfg]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/config redis\.port: .*number/);
    writeFileSync(cfg, 'redis: [unclosed\n');
    const syntax = await runCli(['streams', 'inspect', '--config', cfg]);
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toContain('c.yaml');
    const key = await runCli(['streams', 'tail', 'x', '--count', '0', '--redis', server.url]);
    expect(key.code).toBe(2);
  });
});

describe('marketbus feed', () => {
  it('runs the simulated feed, and stops on SIGINT cleanly (exit 0, no stack trace) after flushing', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    const { spawn } = await import('node:child_process');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'feed',
        '--fake',
        '--speed',
        '600',
        '--instruments',
        'sim:spot:BTCUSDT',
        '--metrics-port',
        '0',
        '--redis',
        server.url,
      ],
      {
        env: { ...process.env, REDIS_URL: '', LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const stream = 'md.candles.1m.sim:spot:BTCUSDT';
    // Started from source with tsx: on a loaded 2-core machine the start alone can take many seconds.
    const deadline = Date.now() + 50_000;
    while ((await redis.xLen(stream)) < 3 && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    expect(await redis.xLen(stream)).toBeGreaterThanOrEqual(3);
    child.kill('SIGINT');
    expect(await exit).toBe(0);
    expect(stderr).toContain('feed stopped');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('config and environment errors name the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mbfeed-'));
    const cfg = join(dir, 'md.yaml');
    writeFileSync(cfg, 'market_data:\n  live_feed:\n    redis_streams:\n      port: "x"\n');
    const r = await runCli(['feed', '--config', cfg, '--metrics-port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('config market_data.live_feed.redis_streams.port');
    writeFileSync(cfg, 'market_data:\n  instruments: ["binance:spot:BTC*"]\n');
    const k = await runCli(['feed', '--config', cfg, '--metrics-port', '0']);
    expect(k.code).toBe(2);
    expect(k.stderr).toMatch(/config market_data\.instruments\.0\.key: expected <exchange>/);
    const v = await runCli([
      'feed',
      '--metrics-port',
      '0',
      '--instruments',
      'sim:spot:BTCUSDT,kraken:spot:XBTUSD',
    ]);
    expect(v.code).toBe(2);
    expect(v.stderr).toContain('config market_data.instruments[1]: no source for venue "kraken"');
    const e = await runCli(['feed', '--metrics-port', '0'], { env: { MARKETBUS_SOURCE: 'nyse' } });
    expect(e.code).toBe(2);
    expect(e.stderr).toContain('config MARKETBUS_SOURCE');
  });
});

describe('stream limits from the config', () => {
  it('streams trim applies the configured retention per catalog kind; a bad one names the key', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    const s = `${uniq('svc')}:status`; // a service-status stream of the catalog
    for (let i = 0; i < 2000; i++) await redis.xAdd(s, '*', { i: String(i) });
    const dir = mkdtempSync(join(tmpdir(), 'mbtrim-'));
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'streams:\n  retention:\n    service-status: { maxlen: 300 }\n');
    const r = await runCli(['--config', cfg, 'streams', 'trim', '--redis', server.url]);
    expect(r.code, r.stderr).toBe(0);
    const len = await redis.xLen(s);
    expect(len).toBeGreaterThanOrEqual(300);
    expect(len).toBeLessThan(500); // the default (1000) would have kept more
    writeFileSync(cfg, 'streams:\n  retention:\n    service-status: { maxlen: -1 }\n');
    const bad = await runCli(['--config', cfg, 'streams', 'trim', '--redis', server.url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('config streams.retention.service-status');
  });
});
