import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { metricSum } from '../helpers/fixtures.js';
import { sendCommand } from '../../src/bus/raw-command.js';
import { isReady } from '../../src/bus/connection.js';
import { streams } from '../../src/contracts/catalog.js';
import { parsePendingSummary } from '../../src/bus/replies.js';
import { candleCodec, priceCodec } from '../../src/contracts/market-data.js';
import { resolveMarketData, startFeed, type FeedRuntime } from '../../src/app/feed.js';
import { silentLogger } from '../../src/util/log.js';
import { connect, startRedis, waitFor, redisOptions, TEST_TOPOLOGY } from '../helpers/redis.js';

const running: FeedRuntime[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

function minutesOf(ids: readonly string[]): number[] {
  return ids.map((id) => Number(id.split('-')[0]));
}

/** Consecutive minutes, each once, ascending. */
function expectGapless(ms: readonly number[], step = 60_000): void {
  for (let i = 1; i < ms.length; i++) expect((ms[i] ?? 0) - (ms[i - 1] ?? 0)).toBe(step);
}

describe('feed service', () => {
  it('publishes the simulated feed per the contract: 1m and 5m candles, price snapshots, status', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    const registry = new Registry();
    const keys = ['sim:spot:BTCUSDT', 'binance:spot:ETHUSDT'];
    const md = resolveMarketData(
      { price_snap_interval_seconds: 1, status_interval_seconds: 1 },
      { source: 'simulated', instruments: keys, speed: 600 },
    );
    const rt = await startFeed({ md, redis: { ...redisOptions(server) }, registry, log: silentLogger });
    running.push(rt);
    await waitFor(
      async () => (await redis.xLen(streams.candles('1m', keys[0] as string))) >= 12,
      20_000,
      '12 minutes',
    );
    await waitFor(
      async () => (await redis.xLen(streams.prices(keys[1] as string))) >= 2,
      10_000,
      'snapshots',
    );
    await rt.close();
    for (const key of keys) {
      const m1 = await redis.xRange(streams.candles('1m', key), '-', '+');
      expectGapless(minutesOf(m1.map((e) => e.id)));
      for (const e of m1) {
        const env = candleCodec.decode(e.message);
        expect(e.id).toBe(`${env.candle.tsOpen}-0`);
        expect(env.candle).toMatchObject({ instrumentKey: key, timeframe: '1m', origin: 'sim' });
      }
      const m5 = await redis.xRange(streams.candles('5m', key), '-', '+');
      expect(m5.length).toBeGreaterThanOrEqual(2);
      expectGapless(minutesOf(m5.map((e) => e.id)), 300_000);
      // a 5m bar aggregates its five 1m bars
      const bar = candleCodec.decode((m5[0] as { message: Record<string, string> }).message).candle;
      const parts = m1
        .map((e) => candleCodec.decode(e.message).candle)
        .filter((c) => c.tsOpen >= bar.tsOpen && c.tsOpen < bar.tsClose);
      if (parts.length === 5) {
        expect(bar.open).toBe(parts[0]?.open);
        expect(bar.close).toBe(parts[4]?.close);
        expect(bar.high).toBe(Math.max(...parts.map((p) => p.high)));
      }
      const prices = await redis.xRange(streams.prices(key), '-', '+');
      const snaps = prices.map((e) => priceCodec.decode(e.message));
      // one entry per instrument per cycle: snapshot times strictly increase
      for (let i = 1; i < snaps.length; i++)
        expect(snaps[i]?.snapTs).toBeGreaterThan(snaps[i - 1]?.snapTs ?? 0);
      for (const s of snaps) expect(s.tick.bid).toBeLessThanOrEqual(s.tick.ask);
    }
    const status = await redis.xRevRange(streams.feedStatus('simulated'), '+', '-', { COUNT: 1 });
    expect(status?.[0]?.message).toMatchObject({ state: 'STREAM', source: 'simulated', market_open: 'true' });
    const inst = JSON.parse(status?.[0]?.message['instruments'] ?? '{}') as Record<string, { state: string }>;
    expect(inst['sim:spot:BTCUSDT']?.state).toBe('ok');
    expect(await metricSum(registry, 'redis_publish_total')).toBeGreaterThan(20);
    expect(await metricSum(registry, 'redis_publish_errors_total')).toBe(0);
  });

  it('keeps running while Redis is down for 30 s, counts the errors, and publishes again by itself', async () => {
    const server = await startRedis({ persistence: 'aof', extraArgs: ['--appendfsync', 'always'] });
    const redis = await connect(server);
    const registry = new Registry();
    const key = 'sim:spot:BTCUSDT';
    const md = resolveMarketData({}, { source: 'simulated', instruments: [key], speed: 120 });
    const rt = await startFeed({
      md,
      redis: { ...redisOptions(server), reconnectMaxMs: 500, commandTimeoutMs: 500 },
      registry,
      log: silentLogger,
    });
    running.push(rt);
    const stream = streams.candles('1m', key);
    await waitFor(async () => (await redis.xLen(stream)) >= 3, 15_000, 'first candles');
    await server.kill('SIGKILL');
    const receivedBefore = await metricSum(registry, 'feed_candles_received_total');
    await new Promise((r) => setTimeout(r, 30_000));
    // ingestion went on: about a minute per 0.5 s was received while Redis was gone
    expect((await metricSum(registry, 'feed_candles_received_total')) - receivedBefore).toBeGreaterThan(40);
    expect(await metricSum(registry, 'redis_publish_errors_total')).toBeGreaterThan(0);
    await server.restart();
    await waitFor(() => isReady(redis), 10_000, 'test client reconnected');
    const outboxEmpty = async (): Promise<boolean> =>
      (await metricSum(registry, 'feed_publish_outbox_depth')) === 0;
    await waitFor(outboxEmpty, 20_000, 'outbox flushed');
    const len = await redis.xLen(stream);
    await waitFor(async () => (await redis.xLen(stream)) > len, 10_000, 'live publishing again');
    const ids = (await redis.xRange(stream, '-', '+')).map((e) => e.id);
    expectGapless(minutesOf(ids)); // the outage left no gap: the outbox caught up in order
  }, 90_000);

  it('a minimal Python consumer (redis-py, group, XREADGROUP, XACK) reads the stream unchanged', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    const key = 'sim:spot:BTCUSDT';
    const md = resolveMarketData({}, { source: 'simulated', instruments: [key], speed: 300 });
    const py = spawn('/usr/bin/python3', ['test/contract/seed002_consumer.py'], {
      env: {
        ...process.env,
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(server.port),
        REDIS_CLUSTER: TEST_TOPOLOGY === 'cluster' ? '1' : '',
        INSTRUMENT_KEY: key,
        GROUP: 'strategy.py_check',
        COUNT: '5',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    py.stdout.on('data', (d: Buffer) => (out += d.toString()));
    py.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => py.on('exit', resolve));
    await waitFor(
      async () => (await redis.exists(streams.candles('1m', key))) === 1,
      10_000,
      'python created its group',
    );
    const rt = await startFeed({
      md,
      redis: { ...redisOptions(server) },
      registry: new Registry(),
      log: silentLogger,
    });
    running.push(rt);
    expect(await exited, err).toBe(0);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; close: string });
    expect(lines).toHaveLength(5);
    const entries = await redis.xRange(streams.candles('1m', key), '-', '+');
    for (const l of lines) {
      const e = entries.find((x) => x.id === l.id);
      expect(e?.message['close']).toBe(l.close);
    }
    const pending = parsePendingSummary(
      await sendCommand(redis, ['XPENDING', streams.candles('1m', key), 'strategy.py_check']),
    );
    expect(pending.count).toBe(0); // it acked everything it read
  });

  it('drops bad input from the source (logged and counted, never published) and goes on', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    const registry = new Registry();
    const dir = mkdtempSync(join(tmpdir(), 'mb-replay-'));
    const file = join(dir, 'bad.csv');
    const t0 = Date.UTC(2026, 0, 5, 10, 0);
    const row = (i: number, o = '100', h = '101', l = '99', c = '100.5'): string =>
      `${t0 + i * 60_000},${o},${h},${l},${c},1.5,${t0 + i * 60_000 + 59_999},150,10,0.7,70,0`;
    writeFileSync(
      file,
      [
        row(0),
        row(1, 'abc'), // non-numeric price
        `${t0 + 2 * 60_000},100,101,99`, // missing fields
        row(2),
        'yesterday,100,101,99,100.5,1.5,0,150,10,0.7,70,0', // bad timestamp
        row(3),
        row(4, '100', '90'), // high below low
        row(5),
      ].join('\n'),
    );
    const md = resolveMarketData({}, { replay: file, instruments: ['binance:spot:BTCUSDT'], speed: 0 });
    const rt = await startFeed({ md, redis: { ...redisOptions(server) }, registry, log: silentLogger });
    running.push(rt);
    await waitFor(() => rt.feed.finished, 10_000, 'replay done');
    await waitFor(
      async () => (await redis.xLen(streams.candles('1m', 'binance:spot:BTCUSDT'))) === 4,
      10_000,
      'good rows',
    );
    const ids = (await redis.xRange(streams.candles('1m', 'binance:spot:BTCUSDT'), '-', '+')).map(
      (e) => e.id,
    );
    expect(ids).toEqual([0, 2, 3, 5].map((i) => `${t0 + i * 60_000}-0`));
    expect(await metricSum(registry, 'feed_invalid_input_total')).toBe(4);
  });
});
