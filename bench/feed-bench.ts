/**
 * Feed benchmark: the simulated feed with 1,000 instruments at accelerated time, publishing 1m and 5m
 * candles (and snapshots) to a private redis-server. Reports candles published per second, CPU per
 * 1,000 candles, and the raw client's pipelined XADD rate of the same 15-field entries in the same run
 * (the ceiling the feed is measured against).
 *
 *   node --import tsx bench/feed-bench.ts [--instruments 1000] [--speed 3000] [--seconds 20] [--json]
 */
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createClient } from 'redis';
import { RedisServer } from '../src/bus/redis-server.js';
import { candleCodec } from '../src/contracts/market-data.js';
import { resolveMarketData, startFeed } from '../src/app/feed.js';
import { silentLogger } from '../src/util/log.js';

const { values } = parseArgs({
  options: {
    instruments: { type: 'string', default: '1000' },
    speed: { type: 'string', default: '3000' },
    seconds: { type: 'string', default: '20' },
    'tick-interval-ms': { type: 'string', default: '15000' },
    json: { type: 'boolean', default: false },
  },
});
const nInstruments = Number(values.instruments);
const speed = Number(values.speed);
const seconds = Number(values.seconds);
const say = (s: string): void => void process.stderr.write(`${s}\n`);

async function counter(registry: Registry, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

async function feedRun(url: string): Promise<{
  perSecond: number;
  cpuMsPer1000: number;
  published: number;
  received: number;
  errors: number;
  lagMinutes: number;
}> {
  const keys = Array.from({ length: nInstruments }, (_, i) => `sim:spot:S${String(i).padStart(4, '0')}`);
  const registry = new Registry();
  const md = resolveMarketData(
    {
      outbox_capacity: 10_000_000,
      sources: { simulated: { tick_interval_ms: Number(values['tick-interval-ms']) } },
    },
    { source: 'simulated', instruments: keys, speed },
  );
  const rt = await startFeed({ md, redis: { url }, registry, log: silentLogger });
  // Warm up 3 s, then measure.
  await new Promise((r) => setTimeout(r, 3000));
  const p0 = await counter(registry, 'redis_publish_total');
  const r0 = await counter(registry, 'feed_candles_received_total');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const dt = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const published = (await counter(registry, 'redis_publish_total')) - p0;
  const received = (await counter(registry, 'feed_candles_received_total')) - r0;
  const errors = await counter(registry, 'redis_publish_errors_total');
  const status = rt.feed.status();
  const lastOpen = Math.max(...Object.values(status.instruments).map((i) => i.lastCandleTsOpen ?? 0));
  await rt.close();
  const simulatedNow = Date.now(); // the source's clock runs `speed` times faster; lag is reported by the source's own candles
  return {
    perSecond: published / dt,
    cpuMsPer1000: ((cpu.user + cpu.system) / 1000 / Math.max(1, published)) * 1000,
    published,
    received,
    errors,
    lagMinutes: Math.max(0, Math.round((simulatedNow - lastOpen) / 60_000)),
  };
}

async function rawRun(url: string, count: number): Promise<number> {
  const c = createClient({ url });
  await c.connect();
  const t = Date.UTC(2020, 0, 1);
  const fields = candleCodec.encode({
    candle: {
      instrumentKey: 'raw:spot:X',
      symbol: 'X',
      marketId: 1,
      timeframe: '1m',
      tsOpen: t,
      tsClose: t + 60_000,
      open: 1,
      high: 2,
      low: 0.5,
      close: 1.5,
      volumeBase: 3,
      volumeQuote: 4.5,
      origin: 'sim',
    },
    ingestedAt: t,
    ingestId: '00000000-0000-0000-0000-000000000001',
  });
  const opts = { TRIM: { strategy: 'MAXLEN' as const, strategyModifier: '~' as const, threshold: 10080 } };
  const t0 = performance.now();
  for (let done = 0; done < count; done += 500) {
    const batch: Promise<string>[] = [];
    for (let i = 0; i < 500; i++) {
      const n = done + i;
      batch.push(
        c.xAdd(`raw.${n % nInstruments}`, `${t + Math.floor(n / nInstruments) * 60_000}-0`, fields, opts),
      );
    }
    await Promise.all(batch);
  }
  const rate = count / ((performance.now() - t0) / 1000);
  await c.close();
  return rate;
}

const server = await RedisServer.start({ persistence: 'none' });
try {
  say(`feed: ${nInstruments} simulated instruments at speed ${speed} for ${seconds} s ...`);
  const feed = await feedRun(server.url);
  say(`raw client: pipelined XADD of ${feed.published} candle entries ...`);
  const raw = await rawRun(server.url, Math.max(50_000, Math.round(feed.published / 500) * 500));
  const result = {
    instruments: nInstruments,
    speed,
    seconds,
    feed_candles_per_s: Math.round(feed.perSecond),
    feed_cpu_ms_per_1000_candles: Number(feed.cpuMsPer1000.toFixed(1)),
    raw_xadd_per_s: Math.round(raw),
    ratio_to_raw: Number((feed.perSecond / raw).toFixed(3)),
    demanded_candles_per_s: Math.round((nInstruments * speed * 1.2) / 60),
    published: feed.published,
    received: feed.received,
    publish_errors: feed.errors,
    node_version: process.version,
  };
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await server.dispose();
}
