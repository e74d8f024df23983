/**
 * Backtest benchmark: a 30-day backtest (43,200 1m candles, EMA(12,26)) measured three ways in one run,
 * on the same candles:
 *
 *   baseline  a plain loop calling the engine directly over the candles in memory (no queue, no store);
 *   store     only the store reads the driver makes (`historyRange` pages, no engine): the ceiling the
 *             driver works under;
 *   driver    `runBacktest` paging the candles out of the store, with the result bookkeeping;
 *   queue     the whole path: `createBacktest` -> BullMQ queue -> worker -> driver -> result stored and
 *             announced on `backtesting:mgmt:results` (timed from enqueue to the worker's `completed`).
 *
 * Each is run `--runs` times (alternating) after a warm-up; the best run of each counts. Reports
 * candles per second and the ratios against the baseline as JSON. Starts a private redis-server; the
 * store is PostgreSQL with `--database-url` (or DATABASE_URL), else PGlite in memory.
 *
 *   node --import tsx bench/backtest-bench.ts [--days 30] [--runs 3] [--page-size 5000] [--database-url URL]
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RedisServer } from '../src/bus/redis-server.js';
import { openRelationalDb } from '../src/app/open-db.js';
import { createStrategy as createStrategyRecord } from '../src/strategy/store.js';
import { runBacktest } from '../src/backtest/driver.js';
import { startBacktester } from '../src/app/backtester.js';
import { createBacktest } from '../src/backtest/backtests.js';
import { historyRange } from '../src/history/subscription.js';
import { silentLogger } from '../src/util/log.js';
import { createSimulatedSource } from '../src/marketdata/sources/simulated.js';
import type { Candle } from '../src/contracts/candle.js';
import { createStrategy } from '../src/strategy/engine.js';
import { parseStrategySpec } from '../src/strategy/spec.js';

const { values } = parseArgs({
  options: {
    days: { type: 'string', default: '30' },
    runs: { type: 'string', default: '3' },
    'page-size': { type: 'string', default: '5000' },
    'database-url': { type: 'string', default: process.env['DATABASE_URL'] ?? '' },
  },
});
const M = 60_000;
const N = Number(values.days) * 1440;
const RUNS = Math.max(1, Number(values.runs));
const PAGE = Number(values['page-size']);
// A fresh instrument per run: a database reused across runs holds no older rows of it.
const SYMBOL = `BT${Date.now().toString(36).toUpperCase()}`;
const KEY = `sim:spot:${SYMBOL}`;
const T0 = Date.UTC(2026, 0, 5);
const WARM = 100;
const say = (s: string): void => void process.stderr.write(`${s}\n`);

const payload = {
  instrument_id: { market_id: 1, symbol: SYMBOL },
  instrument_key: KEY,
  market_type: 'spot',
  timeframe: '1m',
  indicators: [{ name: 'EMA', params: { fast: 12, slow: 26 } }],
  signal_template: 'EMA(12,26)',
};
const spec = parseStrategySpec(payload);

async function simCandles(): Promise<Candle[]> {
  const src = createSimulatedSource({
    instruments: [KEY],
    startMs: T0 - WARM * M,
    speed: 1e7,
    tickIntervalMs: 10_000,
    maxTicksPerSecond: 0,
  });
  const ac = new AbortController();
  const out: Candle[] = [];
  for await (const ev of src.events(ac.signal)) {
    if (ev.kind !== 'candle') continue;
    out.push(ev.candle);
    if (out.length >= WARM + N) break;
  }
  ac.abort();
  return out;
}

interface Run {
  readonly ms: number;
  readonly signals: number;
}

const rate = (r: Run): number => Math.round((N / r.ms) * 1000);
const best = (rs: readonly Run[]): Run => rs.reduce((a, b) => (b.ms < a.ms ? b : a));

async function main(): Promise<void> {
  const redis = await RedisServer.start({ persistence: 'none' });
  const db = openRelationalDb({ databaseUrl: values['database-url'] || undefined }, silentLogger);
  await db.migrate();
  const candles = await simCandles();
  for (let i = 0; i < candles.length; i += 5000) await db.candles.insert(candles.slice(i, i + 5000));
  const strategy = await createStrategyRecord(db.sql, 'bench', 'ema', payload);
  say(`${candles.length} candles in the ${db.kind} store; ${RUNS} runs of each`);

  const bt = await startBacktester({
    redis: { url: redis.url },
    db: db.sql,
    candles: db.candles,
    log: silentLogger,
    service: false,
    concurrency: 1,
    pageSize: PAGE,
    progressEvery: PAGE,
  });
  const done = new Map<string, () => void>();
  bt.worker?.worker.on('completed', (job) => done.get(job.id ?? '')?.());

  // The same sequence the driver feeds: the engine's warm-up before T0, then the range.
  const fed = candles.filter((c) => c.tsOpen >= T0 - createStrategy(spec).warmupCandles * M);
  const baseline = (): Run => {
    const t = performance.now();
    const e = createStrategy(spec);
    let signals = 0;
    for (const c of fed) if (e.onCandle(c)?.signal && c.tsOpen >= T0) signals++;
    return { ms: performance.now() - t, signals };
  };
  const storeOnly = async (): Promise<Run> => {
    const t = performance.now();
    let cursor = fed[0]?.tsOpen ?? T0;
    for (;;) {
      const page = await historyRange(db.candles, KEY, '1m', cursor, T0 + N * M, PAGE);
      const last = page[page.length - 1];
      if (!last || page.length < PAGE) break;
      cursor = last.tsOpen + 1;
    }
    return { ms: performance.now() - t, signals: b0.signals };
  };
  const driver = async (): Promise<Run> => {
    const t = performance.now();
    const { result } = await runBacktest({
      store: db.candles,
      spec,
      from: T0,
      to: T0 + N * M,
      pageSize: PAGE,
    });
    return { ms: performance.now() - t, signals: result.summary.signals };
  };
  const queued = async (): Promise<Run> => {
    const t = performance.now();
    let finish = (): void => undefined;
    const finished = new Promise<void>((r) => (finish = r));
    const rec = await createBacktest(
      { db: db.sql, queue: bt.queue, redis: bt.redis },
      { strategyId: strategy.id, from: T0, to: T0 + N * M },
    );
    done.set(rec.id, finish);
    await finished;
    const ms = performance.now() - t;
    const { rows } = await db.sql.query(
      `SELECT result->'summary'->>'signals' AS s FROM backtests WHERE id = $1`,
      [rec.id],
    );
    return { ms, signals: Number(rows[0]?.['s']) };
  };

  // warm-up
  const b0 = baseline();
  await storeOnly();
  await driver();
  await queued();
  const runs = { baseline: [] as Run[], store: [] as Run[], driver: [] as Run[], queue: [] as Run[] };
  for (let i = 0; i < RUNS; i++) {
    runs.baseline.push(baseline());
    runs.store.push(await storeOnly());
    runs.driver.push(await driver());
    runs.queue.push(await queued());
  }
  const b = best(runs.baseline);
  const st = best(runs.store);
  const d = best(runs.driver);
  const q = best(runs.queue);
  if (b.signals !== d.signals || b.signals !== q.signals)
    throw new Error(`signals differ: baseline ${b.signals}, driver ${d.signals}, queue ${q.signals}`);
  const result = {
    candles: N,
    store: db.kind,
    page_size: PAGE,
    runs: RUNS,
    signals: b.signals,
    baseline: { candles_per_s: rate(b), ms: Math.round(b.ms * 10) / 10 },
    store_reads_only: { candles_per_s: rate(st), ms: Math.round(st.ms * 10) / 10 },
    driver: { candles_per_s: rate(d), ms: Math.round(d.ms * 10) / 10 },
    queue: { candles_per_s: rate(q), ms: Math.round(q.ms * 10) / 10 },
    ratio_driver_vs_baseline: Math.round((rate(d) / rate(b)) * 1000) / 1000,
    ratio_queue_vs_baseline: Math.round((rate(q) / rate(b)) * 1000) / 1000,
    ratio_driver_vs_store_reads: Math.round((rate(d) / rate(st)) * 1000) / 1000,
    node: process.version,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await bt.close();
  await db.close();
  await redis.dispose();
}

await main();
process.exit(0);
