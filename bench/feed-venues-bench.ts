/**
 * Feed benchmark over several venues: one feed process with 1,000 instruments spread over the venues'
 * local fake servers (run in a child process, `feed-venues-child.ts`, so their work is not counted) at
 * accelerated market time, publishing 1m and 5m candles to a private redis-server. Reports candles
 * published per second and the feed process's CPU per 1,000 candles, beside the same 1,000 instruments
 * on one venue (binance only) measured in the same run, the two alternating for `--rounds` rounds.
 *
 *   node --import tsx bench/feed-venues-bench.ts [--instruments 1000] [--speed 600] [--seconds 20]
 *     [--venues binance,bybit,okx] [--rounds 3] [--log-level silent] [--json]
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { RedisServer } from '../src/bus/redis-server.js';
import { ChildChannel } from '../src/bench/child-channel.js';
import { resolveMarketData, startFeed } from '../src/app/feed.js';
import { createLogger, silentLogger } from '../src/util/log.js';
import type { FromVenuesChild, ToVenuesChild, VenuesChildConfig } from './feed-venues-child.js';

const { values } = parseArgs({
  options: {
    instruments: { type: 'string', default: '1000' },
    speed: { type: 'string', default: '600' },
    seconds: { type: 'string', default: '20' },
    venues: { type: 'string', default: 'binance,bybit,okx' },
    rounds: { type: 'string', default: '3' },
    'log-level': { type: 'string', default: 'silent' },
    json: { type: 'boolean', default: false },
  },
});
const nInstruments = Number(values.instruments);
const speed = Number(values.speed);
const seconds = Number(values.seconds);
const venues = values.venues.split(',').map((v) => v.trim());
const rounds = Math.max(1, Number(values.rounds));
const say = (s: string): void => void process.stderr.write(`${s}\n`);
const M = 60_000;

/** The i-th bench instrument's key on a venue, by its symbol rules (OKX: BASE-QUOTE). */
function keyOf(venue: string, i: number): string {
  const base = `B${String(i).padStart(4, '0')}`;
  return venue === 'okx' ? `okx:spot:${base}-USDT` : `${venue}:spot:${base}USDT`;
}

/** The instruments spread round-robin over the venues. */
function spread(over: readonly string[]): Record<string, string[]> {
  const keys: Record<string, string[]> = {};
  for (let i = 0; i < nInstruments; i++) {
    const venue = over[i % over.length] as string;
    (keys[venue] ??= []).push(keyOf(venue, i));
  }
  return keys;
}

async function counter(registry: Registry, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

interface RunResult {
  readonly venues: readonly string[];
  readonly perSecond: number;
  readonly cpuMsPer1000: number;
  readonly published: number;
  readonly errors: number;
  readonly sent: number;
}

async function run(keys: Record<string, string[]>): Promise<RunResult> {
  const server = await RedisServer.start({ persistence: 'none' });
  const t0 = Math.floor(Date.UTC(2026, 0, 5, 0, 0) / M) * M;
  const cfg: VenuesChildConfig = { keys, t0, realStart: Date.now() + 2000, speed };
  const child = new ChildChannel<ToVenuesChild, FromVenuesChild>({
    script: fileURLToPath(new URL('./feed-venues-child.ts', import.meta.url)),
    args: [JSON.stringify(cfg)],
    name: 'venues child',
  });
  try {
    const { settings } = await child.next('ready', 30_000);
    const now = (): number => cfg.t0 + (Date.now() - cfg.realStart) * speed;
    const md = resolveMarketData(
      { instruments: Object.values(keys).flat(), outbox_capacity: 10_000_000, sources: settings },
      {},
    );
    const registry = new Registry();
    const rt = await startFeed({
      md,
      redis: { url: server.url },
      registry,
      log: values['log-level'] === 'silent' ? silentLogger : createLogger('feed', values['log-level']),
      // A close arriving late here is the feed falling behind, not a lost message: no REST fill.
      sourceTuning: { now, lateGraceMs: 24 * 60 * M },
    });
    try {
      // Warm-up: every venue's sockets up and its candles flowing (connections are paced by each
      // venue's limits), then 3 s more.
      const ready = Date.now() + 120_000;
      const received = async (): Promise<Map<string, number>> => {
        const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'feed_candles_received_total');
        const by = new Map<string, number>();
        for (const v of m?.values ?? []) {
          const src = String(v.labels['source']);
          by.set(src, (by.get(src) ?? 0) + v.value);
        }
        return by;
      };
      for (;;) {
        const by = await received();
        if (Object.entries(keys).every(([v, ks]) => (by.get(v) ?? 0) >= ks.length)) break;
        if (Date.now() > ready)
          throw new Error(`not every venue delivers candles: ${JSON.stringify([...by])}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 3000));
      const p0 = await counter(registry, 'redis_publish_total');
      const cpu0 = process.cpuUsage();
      const start = performance.now();
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const dt = (performance.now() - start) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const published = (await counter(registry, 'redis_publish_total')) - p0;
      const errors = await counter(registry, 'redis_publish_errors_total');
      const diag = {
        received: Object.fromEntries(await received()),
        duplicates: await counter(registry, 'redis_publish_duplicates_total'),
        outbox: await counter(registry, 'feed_publish_outbox_depth'),
        queue: await counter(registry, 'feed_supervisor_queue_depth'),
        states: Object.fromEntries(rt.feed.sourceNames.map((n) => [n, rt.feed.status(n).state])),
      };
      say(`  ${JSON.stringify(diag)}`);
      child.post({ type: 'stop' });
      const stopped = await child.next('stopped', 30_000);
      return {
        venues: Object.keys(keys),
        perSecond: published / dt,
        cpuMsPer1000: ((cpu.user + cpu.system) / 1000 / Math.max(1, published)) * 1000,
        published,
        errors,
        sent: stopped.closes,
      };
    } finally {
      await rt.close();
    }
  } finally {
    child.kill();
    await server.dispose();
  }
}

// The two set-ups alternate, round after round, so that a machine busy with other work slows both
// alike; each is reported by its median round (by candles per second).
const severalRuns: RunResult[] = [];
const singleRuns: RunResult[] = [];
for (let round = 1; round <= rounds; round++) {
  say(
    `round ${round}/${rounds}: ${nInstruments} instruments over ${venues.join(', ')} at speed ${speed} for ${seconds} s ...`,
  );
  severalRuns.push(await run(spread(venues)));
  say(`round ${round}/${rounds}: the same ${nInstruments} instruments on binance alone ...`);
  singleRuns.push(await run(spread(['binance'])));
}
const median = (runs: readonly RunResult[]): RunResult =>
  [...runs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor((runs.length - 1) / 2)] as RunResult;
const several = median(severalRuns);
const single = median(singleRuns);
const shown = (r: RunResult) => ({
  venues: r.venues,
  candles_per_s: Math.round(r.perSecond),
  cpu_ms_per_1000_candles: Number(r.cpuMsPer1000.toFixed(1)),
  published: r.published,
  closes_sent: r.sent,
  publish_errors: r.errors,
});
const perRound = (runs: readonly RunResult[]) =>
  runs.map((r) => [Math.round(r.perSecond), Number(r.cpuMsPer1000.toFixed(1))]);
const result = {
  instruments: nInstruments,
  speed,
  seconds,
  rounds,
  demanded_candles_per_s: Math.round((nInstruments * speed * 1.2) / 60),
  venues: shown(several),
  single_venue: shown(single),
  ratio_to_single: Number((several.perSecond / single.perSecond).toFixed(3)),
  /** [candles/s, CPU ms per 1,000 candles] of every round. */
  rounds_venues: perRound(severalRuns),
  rounds_single_venue: perRound(singleRuns),
  node_version: process.version,
};
process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
