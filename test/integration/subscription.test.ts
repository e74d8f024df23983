import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG_POLICY, streams } from '../../src/contracts/catalog.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { StreamProducer } from '../../src/bus/producer.js';
import { createPostgresStore } from '../../src/history/postgres-store.js';
import type { CandleStore } from '../../src/history/store.js';
import { subscribeCandles, type SubscriptionPhase } from '../../src/history/subscription.js';
import { HistoryWriter } from '../../src/history/writer.js';
import { silentLogger } from '../../src/util/log.js';
import { FeedMetrics } from '../../src/marketdata/feed-metrics.js';
import { FeedService } from '../../src/marketdata/feed.js';
import { createSimulatedSource } from '../../src/marketdata/sources/simulated.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { connect, startRedis, uniq, waitFor, type TestRedis, redisEnv } from '../helpers/redis.js';

const M = 60_000;
const KEY = 'sim:spot:BTCUSDT';
const STREAM = streams.candles('1m', KEY);

let server: TestRedis;
let redis: RedisClient;
let db: TestPostgres;
let store: CandleStore;
let feed: FeedService;
let writer: HistoryWriter;
const children: ChildProcess[] = [];

/** The simulated feed, 600 minutes behind real time at 100 simulated minutes per second. */
beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
  db = await startPostgres();
  store = createPostgresStore({ url: db.url });
  await store.migrate();
  writer = new HistoryWriter(store, { flushIntervalMs: 100 });
  writer.start();
  const start = Math.floor(Date.now() / M) * M - 3000 * M;
  feed = new FeedService({
    source: createSimulatedSource({
      instruments: [KEY],
      startMs: start,
      speed: 6000,
      tickIntervalMs: 30_000,
      maxTicksPerSecond: 1,
    }),
    producer: new StreamProducer(redis, { policy: CATALOG_POLICY }),
    redis,
    metrics: new FeedMetrics(new Registry()),
    log: silentLogger,
    candleSinks: [(c) => writer.offer(c)],
  });
  await feed.start();
  await waitFor(async () => ((await store.bounds(KEY))?.count ?? 0) >= 600, 30_000, '600 stored minutes');
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await feed.close();
  await writer.close();
  await store.close();
  await db.drop();
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function expectEachMinuteOnce(ts: readonly number[], from: number): void {
  expect(ts[0]).toBe(from);
  for (let i = 1; i < ts.length; i++) expect((ts[i] ?? 0) - (ts[i - 1] ?? 0)).toBe(M);
}

describe('candle subscription', () => {
  it('from 500 candles in the past while the feed runs: history, stream, live — every minute once, in order', async () => {
    const b = await store.bounds(KEY);
    const from = (b?.last ?? 0) - 500 * M;
    const seen: number[] = [];
    const phases = new Set<SubscriptionPhase>();
    const ac = new AbortController();
    let liveTarget = 0;
    for await (const { candle, phase } of subscribeCandles({
      redis,
      store,
      instrumentKey: KEY,
      from,
      group: uniq('strategy.t'),
      consumer: 'c1',
      signal: ac.signal,
      blockMs: 200,
    })) {
      seen.push(candle.tsOpen);
      phases.add(phase);
      if (phase === 'live' && liveTarget === 0) liveTarget = candle.tsOpen + 50 * M;
      if (liveTarget > 0 && candle.tsOpen >= liveTarget) ac.abort();
    }
    expect(seen.length).toBeGreaterThan(550);
    expectEachMinuteOnce(seen, from);
    expect(phases).toContain('history');
    expect(phases).toContain('live');
  });

  it('the same with a minute deleted from the stream before it is read: filled from history', async () => {
    const b = await store.bounds(KEY);
    const from = (b?.last ?? 0) - 20 * M;
    const seen: number[] = [];
    const phaseOf = new Map<number, SubscriptionPhase>();
    const ac = new AbortController();
    let victim = 0;
    for await (const { candle, phase } of subscribeCandles({
      redis,
      store,
      instrumentKey: KEY,
      from,
      group: uniq('strategy.t'),
      consumer: 'c1',
      signal: ac.signal,
      blockMs: 200,
    })) {
      seen.push(candle.tsOpen);
      phaseOf.set(candle.tsOpen, phase);
      if (victim === 0 && (phase === 'live' || phase === 'stream')) {
        // At the live edge: a minute the feed publishes shortly is deleted from the stream once the
        // store has it too, before the subscription reads it.
        victim = candle.tsOpen + 50 * M;
        await waitFor(
          async () => (await redis.xRange(STREAM, `${victim}-0`, `${victim}-0`)).length === 1,
          10_000,
          'victim published',
        );
        await waitFor(
          async () => (await store.openTimes(KEY, victim, victim + M)).length === 1,
          10_000,
          'victim stored',
        );
        expect(await redis.xDel(STREAM, `${victim}-0`)).toBe(1);
      }
      if (victim > 0 && candle.tsOpen >= victim + 20 * M) ac.abort();
    }
    expectEachMinuteOnce(seen, from);
    expect(seen).toContain(victim);
    expect(phaseOf.get(victim)).toBe('fill');
  });

  it('the same with the consumer killed (SIGKILL) and restarted mid-way: each minute yields one output', async () => {
    const b = await store.bounds(KEY);
    const from = (b?.last ?? 0) - 500 * M;
    const group = uniq('strategy.t');
    const out = `mgmt:${uniq()}:commands`;
    const env = {
      ...redisEnv(server),
      DATABASE_URL: db.url,
      INSTRUMENT: KEY,
      FROM: String(from),
      GROUP: group,
      OUT: out,
      DELAY_MS: '2',
    };
    const first = startWorker({ ...env, CONSUMER: 'first' });
    await waitFor(async () => (await redis.xLen(out)) >= 200, 30_000, 'first worker progress');
    first.kill('SIGKILL');
    await once(first, 'exit');
    const atKill = await redis.xLen(out);
    startWorker({ ...env, CONSUMER: 'second' });
    const target = (b?.last ?? 0) + 100 * M; // well into live data
    await waitFor(
      async () => ((await redis.xRevRange(out, '+', '-', { COUNT: 1 }))[0]?.id ?? '0') >= `${target}-0`,
      60_000,
      'second worker reaches live data',
    );
    const ids = (await redis.xRange(out, '-', '+')).map((e) => Number(e.id.split('-')[0]));
    expectEachMinuteOnce(ids, from);
    // the restart resumed from the checkpoint: the second consumer did not start again from `from`
    const secondYields = await redis.hGetAll(`yields:{${out}}:second`);
    expect(
      Object.keys(secondYields)
        .map(Number)
        .sort((x, y) => x - y)[0],
    ).toBeGreaterThanOrEqual(from + (atKill - 2) * M);
    // at most the candle in flight at the kill was yielded by both
    const firstYields = await redis.hGetAll(`yields:{${out}}:first`);
    const both = Object.keys(secondYields).filter((k) => k in firstYields);
    expect(both.length).toBeLessThanOrEqual(1);
  });
});

function startWorker(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/subscription-worker.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}
