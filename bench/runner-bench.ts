/**
 * Runner benchmark: one runner instance with 1,000 running strategies on one instrument (MA, EMA, RSI
 * and BB templates with varied parameters). Candles are published into the candle stream (and the
 * store) as fast as the runner takes them; reported: candles processed per second, strategy steps and
 * outputs per second, and the raw client's pipelined XADD rate of the same number of output entries in
 * the same run (the floor under the runner's cost: every step publishes one metric entry).
 *
 *   node --import tsx bench/runner-bench.ts [--strategies 1000] [--candles 200] [--json]
 */
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createClient } from 'redis';
import { streams, CATALOG_POLICY } from '../src/contracts/catalog.js';
import { connectRedis } from '../src/bus/connection.js';
import { StreamProducer } from '../src/bus/producer.js';
import { RedisServer } from '../src/bus/redis-server.js';
import { ensureUser } from '../src/api/auth/identity-store.js';
import { openRelationalDb } from '../src/app/open-db.js';
import { createStrategy, startRun } from '../src/strategy/store.js';
import { silentLogger } from '../src/util/log.js';
import { candleCodec } from '../src/contracts/market-data.js';
import type { Candle } from '../src/contracts/candle.js';
import { startRunner } from '../src/app/runner.js';
import { benchTemplate } from '../src/bench/strategy-templates.js';

const { values } = parseArgs({
  options: {
    strategies: { type: 'string', default: '1000' },
    candles: { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
  },
});
const nStrategies = Number(values.strategies);
const nCandles = Number(values.candles);
const say = (s: string): void => void process.stderr.write(`${s}\n`);
const M = 60_000;
const KEY = 'sim:spot:BTCUSDT';

function candleAt(i: number, t0: number): Candle {
  const p = 60_000 + 400 * Math.sin(i / 7) + 150 * Math.sin(i / 2.3);
  return {
    instrumentKey: KEY,
    symbol: 'BTCUSDT',
    marketId: 1,
    timeframe: '1m',
    tsOpen: t0 + i * M,
    tsClose: t0 + (i + 1) * M,
    open: p,
    high: p + 30,
    low: p - 30,
    close: p + 10 * Math.sin(i),
    volumeBase: 1,
    volumeQuote: p,
    origin: 'sim',
  };
}

async function counter(registry: Registry, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

const server = await RedisServer.start({ persistence: 'none' });
const db = openRelationalDb({}, silentLogger); // PGlite in memory
try {
  await db.migrate();
  const redis = await connectRedis({ url: server.url });
  say(`creating ${nStrategies} strategies and runs ...`);
  const users = await Promise.all(
    Array.from({ length: 10 }, (_, i) => ensureUser(db.sql, `bench-user-${i}`, `u${i}`)),
  );
  for (let i = 0; i < nStrategies; i++) {
    const t = benchTemplate(i);
    const s = await createStrategy(db.sql, users[i % users.length]?.id ?? 'x', `s${i}`, {
      instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
      instrument_key: KEY,
      market_type: 'spot',
      timeframe: '1m',
      indicators: [{ name: t.name, params: t.params }],
      signal_template: t.text,
    });
    await startRun(db.sql, s, KEY);
  }
  const registry = new Registry();
  const rt = await startRunner({
    redis: { url: server.url },
    db: db.sql,
    candles: db.candles,
    registry,
    log: silentLogger,
    notifyMode: 'log_only',
    syncIntervalMs: 200,
  });
  await new Promise((r) => setTimeout(r, 1500)); // lease taken, subscription at the live edge
  // Candles start at the next minute (the subscription starts at the live edge).
  const t0 = Math.floor(Date.now() / M) * M + M;
  const candles = Array.from({ length: nCandles }, (_, i) => candleAt(i, t0));
  await db.candles.insert(candles);
  say(`publishing ${nCandles} candles; the runner steps ${nStrategies} strategies on each ...`);
  const producer = new StreamProducer(redis, { policy: CATALOG_POLICY });
  const cpu0 = process.cpuUsage();
  const t1 = performance.now();
  await producer.publishMany(
    candles.map((c) => ({
      stream: streams.candles('1m', KEY),
      id: `${c.tsOpen}-0`,
      fields: candleCodec.encode({ candle: c, ingestedAt: Date.now(), ingestId: 'bench' }),
    })),
  );
  while ((await counter(registry, 'strategy_live_runner_messages_acked_total')) < nCandles)
    await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t1) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const steps = await counter(registry, 'strategy_live_runner_iterations_total');
  const outputsN = await counter(registry, 'strategy_realtime_output_publish_total');
  await rt.close();

  say(`raw client: pipelined XADD of ${outputsN} output-sized entries ...`);
  const raw = createClient({ url: server.url });
  await raw.connect();
  const sample = await redis.xRange(streams.strategyMetrics(users[0]?.id ?? 'x'), '-', '+', { COUNT: 1 });
  const fields = sample[0]?.message ?? { a: '1' };
  const t2 = performance.now();
  for (let done = 0; done < outputsN; done += 500) {
    const batch: Promise<string>[] = [];
    for (let i = 0; i < 500 && done + i < outputsN; i++)
      batch.push(raw.xAdd(`raw.out.${i % 10}`, '*', fields));
    await Promise.all(batch);
  }
  const rawPerS = outputsN / ((performance.now() - t2) / 1000);
  await raw.close();
  await redis.close();
  const result = {
    strategies: nStrategies,
    candles: nCandles,
    candles_per_s: Number((nCandles / seconds).toFixed(1)),
    strategy_steps_per_s: Math.round(steps / seconds),
    outputs_per_s: Math.round(outputsN / seconds),
    raw_xadd_per_s: Math.round(rawPerS),
    outputs_ratio_to_raw: Number((outputsN / seconds / rawPerS).toFixed(3)),
    cpu_ms_per_candle: Number(((cpu.user + cpu.system) / 1000 / nCandles).toFixed(1)),
    node_version: process.version,
  };
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await db.close();
  await server.dispose();
}
