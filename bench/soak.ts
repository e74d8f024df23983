/**
 * Soak: the whole system under a steady load for a long time, as separate real processes, watching
 * throughput, latency and whether memory stays flat.
 *
 *   npm run build && node --import tsx bench/soak.ts [--duration 600] [--instruments 2000]
 *     [--strategies 50] [--clients 200] [--sample-interval 5] [--speed 60] ... (--help for all)
 *
 * Processes: a private redis-server (src/bus/redis-server.ts) and a private PostgreSQL cluster
 * (bench/soak/postgres.ts); `marketbus feed`, `marketbus runner` and `marketbus api` from dist/ with a
 * generated config (2,000 simulated instruments, history written to PostgreSQL); users sign in and
 * create and start their strategies through the API; then three probe processes (bench/soak/probe.ts):
 * the WebSocket clients, one raw XREAD client (the latency baseline, same streams, same run) and the
 * strategy-output reader. Every `--sample-interval` seconds the coordinator samples each process's RSS
 * (/proc/<pid>/status VmRSS) and CPU, Redis INFO memory and the entries the streams hold, the services'
 * counters (rates) and the probes' latency of the interval, and prints a progress line. At the end:
 * MEMORY USAGE of sample streams, the flatness verdict, the JSON report and the SVG plot.
 *
 * Every child is stopped at the end, on an error and on Ctrl+C (a second Ctrl+C kills at once).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { createClient } from 'redis';
import { sleep } from '../src/util/sleep.js';
import { streams } from '../src/contracts/catalog.js';
import { freePort, RedisServer } from '../src/bus/redis-server.js';
import { readCounters, type Counters, type Endpoints } from './soak/counters.js';
import { parseOptions, type SoakOptions } from './soak/options.js';
import { startPrivatePostgres, type PrivatePostgres } from './soak/postgres.js';
import { ProbeChild } from './soak/probe-child.js';
import type { FinalStats, ProbeConfig } from './soak/probe.js';
import { cpuSeconds, isAlive, rssMiB, treeCpuSeconds, treePssMiB } from './soak/procfs.js';
import { totalEntries, streamMemory, type Client } from './soak/redis-stats.js';
import { buildReport, progressLine, summaryTable, type Row, type Run } from './soak/report.js';
import { linePlotSvg } from './soak/plot.js';
import { serviceEnv, ServiceProcess, writeConfig } from './soak/services.js';
import {
  createStrategies,
  signInUsers,
  waitRunning,
  type SoakStrategy,
  type SoakUser,
} from './soak/setup.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const BOT_TOKEN = '424242424:SOAK-bench_token-AbCdEf';
const say = (s: string): void => void process.stderr.write(`${s}\n`);

/** Everything started, in start order; stopped in reverse order. */
class Children {
  private readonly list: { name: string; stop: () => Promise<void>; kill: () => void }[] = [];
  /** Every process id ever started, to check that none is left at the end. */
  readonly pids = new Map<number, string>();

  add(name: string, pid: number, stop: () => Promise<void>, kill: () => void): void {
    this.list.push({ name, stop, kill });
    if (pid > 0) this.pids.set(pid, name);
  }

  async stopAll(): Promise<void> {
    for (const c of [...this.list].reverse()) {
      try {
        await c.stop();
      } catch (err) {
        say(`soak: stopping ${c.name} failed (${String(err)}); killing it`);
        c.kill();
      }
    }
    this.list.length = 0;
  }

  killAll(): void {
    for (const c of [...this.list].reverse()) c.kill();
  }
}

function instrumentKeys(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `sim:spot:S${String(i).padStart(4, '0')}USDT`);
}

async function waitHttp(url: string, timeoutMs: number, what: string, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what} exited before answering ${url}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await sleep(200);
  }
  throw new Error(`${what}: ${url} did not answer 200 within ${timeoutMs} ms`);
}

function defaultOut(): string {
  return join(ROOT, 'bench', 'results', `soak-${new Date().toISOString().slice(0, 10)}.json`);
}

/**
 * The WebSocket clients' subscriptions: client i is user i mod U's, watching `--ws-instruments`
 * consecutive instruments among the `--ws-hot` first ones (1m candles and prices of each) plus its
 * user's metrics and events. The raw baseline reads the union, each stream weighted by its readers.
 */
function wsClients(o: SoakOptions, users: readonly SoakUser[], keys: readonly string[]) {
  const hot = Math.min(o.wsHot, keys.length);
  const readers = new Map<string, number>();
  const read = (stream: string): void => void readers.set(stream, (readers.get(stream) ?? 0) + 1);
  const clients = Array.from({ length: o.clients }, (_, i) => {
    const user = users[i % users.length] as SoakUser;
    const subscribe: Record<string, string>[] = [];
    const mine = new Set<string>();
    for (let j = 0; j < Math.min(o.wsInstruments, hot); j++)
      mine.add(keys[(i * o.wsInstruments + j) % hot] as string);
    for (const key of mine) {
      subscribe.push({ channel: 'candles', instrument: key, timeframe: '1m' });
      subscribe.push({ channel: 'prices', instrument: key });
      read(streams.candles('1m', key));
      read(streams.prices(key));
    }
    subscribe.push({ channel: 'metrics' }, { channel: 'events' });
    read(streams.strategyMetrics(user.userId));
    read(streams.strategyEvents(user.userId));
    return { cookie: user.cookie, subscribe };
  });
  const rawStreams = [...readers.keys()];
  return {
    clients,
    rawStreams,
    rawWeights: rawStreams.map((s) => readers.get(s) ?? 1),
    watched: rawStreams.filter((s) => s.startsWith('md.prices.')).length,
  };
}

async function main(o: SoakOptions, abort: AbortSignal, children: Children): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const out = resolve(o.out ?? defaultOut());
  const plotFile = out.replace(/\.json$/, '') + '-rss.svg';
  const tmp = mkdtempSync(join(tmpdir(), 'marketbus-soak-'));
  const logDir = join(tmp, 'logs');
  mkdirSync(logDir);
  const keys = instrumentKeys(o.instruments);
  const startedAt = new Date().toISOString();
  const load0 = loadavg();
  let ok = false;
  // Set-up steps wait for services (up to minutes): a Ctrl+C must not wait for them to finish.
  const interrupted = new Promise<never>((_resolve, reject) => {
    const fail = (): void => reject(new Error('interrupted'));
    if (abort.aborted) fail();
    else abort.addEventListener('abort', fail, { once: true });
  });
  interrupted.catch(() => undefined);
  const step = <T>(p: Promise<T>): Promise<T> => Promise.race([p, interrupted]);
  let redis: Client | undefined;
  let pg: PrivatePostgres | undefined;
  try {
    say(`soak: working directory ${tmp}`);
    const redisServer = await RedisServer.start({
      persistence: o.aof ? 'aof' : 'none',
      dir: join(tmp, 'redis'),
    });
    children.add(
      'redis-server',
      redisServer.pid ?? -1,
      () => redisServer.stop(),
      () => void redisServer.kill(),
    );
    const redisPid = redisServer.pid ?? -1;
    redis = createClient({ url: redisServer.url });
    redis.on('error', () => undefined);
    await redis.connect();
    const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
    say(`soak: redis-server ${redisVersion} on ${redisServer.url} (pid ${redisPid})`);
    const pgServer = await startPrivatePostgres();
    pg = pgServer;
    children.add(
      'postgres',
      pgServer.pid,
      () => pgServer.stop(),
      () => undefined,
    );
    say(`soak: PostgreSQL ${pg.version} on ${pg.url} (pid ${pg.pid})`);

    const configFile = join(tmp, 'soak.yaml');
    writeConfig(configFile, {
      dataDir: join(tmp, 'data'),
      instruments: keys,
      speed: o.speed,
      tickIntervalMs: 1000,
      maxTicksPerSecond: o.maxTicks,
      priceSnapIntervalS: o.priceSnap,
      seed: 8,
    });
    const base = { REDIS_URL: redisServer.url, DATABASE_URL: pg.url, LOG_LEVEL: o.logLevel };
    const [apiPort, feedPort, runnerPort] = [await freePort(), await freePort(), await freePort()];
    const endpoints: Endpoints = {
      feedMetrics: `http://127.0.0.1:${feedPort}/metrics`,
      runnerMetrics: `http://127.0.0.1:${runnerPort}/metrics`,
      apiMetrics: `http://127.0.0.1:${apiPort}/metrics`,
    };
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const start = (name: string, args: string[], env: Record<string, string>): ServiceProcess => {
      const p = ServiceProcess.start(
        name,
        CLI,
        ['--config', configFile, ...args],
        serviceEnv({ ...base, ...env }),
        logDir,
      );
      children.add(
        name,
        p.pid,
        () => p.stop(15_000),
        () => p.kill(),
      );
      return p;
    };

    // API and runner first: the strategies are created through the one and started by the other.
    const api = start('api', ['api', '--port', String(apiPort), '--host', '127.0.0.1'], {
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_BOT_USERNAME: 'marketbus_soak_bot',
      SESSION_SECRET: 'soak-session-secret-0123456789abcdef',
    });
    const runner = start(
      'runner',
      ['runner', '--metrics-port', String(runnerPort), '--instance', 'soak-runner'],
      {
        MARKETBUS_NOTIFY_MODE: 'log_only',
      },
    );
    await step(waitHttp(`${apiUrl}/readyz`, 60_000, 'api', () => api.running));
    await step(runner.waitForLog(/"msg":"runner up"/, 60_000));
    say(`soak: api (pid ${api.pid}) and runner (pid ${runner.pid}) up`);

    const users = await step(signInUsers(apiUrl, BOT_TOKEN, o.users));
    const strategies: SoakStrategy[] = await step(createStrategies(apiUrl, users, keys, o.strategies));
    await step(waitRunning(apiUrl, users, strategies.length));
    say(`soak: ${users.length} users signed in; ${strategies.length} strategies created and running`);
    const usedMemoryEmpty = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);

    const feed = start('feed', ['feed', '--metrics-port', String(feedPort)], {});
    await step(feed.waitForLog(/"msg":"feed started"/, 120_000));
    const firstStream = streams.candles('1m', keys[0] as string);
    const firstBy = Date.now() + 120_000;
    while (Number(await redis.sendCommand(['XLEN', firstStream])) === 0) {
      if (!feed.running) throw new Error(`feed exited (${feed.ending}):\n${feed.tail()}`);
      if (Date.now() > firstBy) throw new Error('no candle published within 120 s of the feed starting');
      await step(sleep(200));
      if (abort.aborted) throw new Error('interrupted');
    }
    say(`soak: feed (pid ${feed.pid}) publishing ${keys.length} instruments at speed ${o.speed}`);

    // Probes: WebSocket clients, raw XREAD baseline, strategy outputs.
    const ws = wsClients(o, users, keys);
    const probes: ProbeChild[] = [];
    const probe = (cfg: ProbeConfig): ProbeChild => {
      const p = new ProbeChild(cfg.role, cfg);
      probes.push(p);
      children.add(
        `${cfg.role} probe`,
        p.pid,
        () => {
          p.post({ type: 'finish' }); // a no-op when it already finished; else it closes and exits
          return p.exit(3000);
        },
        () => p.kill(),
      );
      return p;
    };
    const wsProbe =
      o.clients > 0
        ? probe({ role: 'ws', url: `${apiUrl.replace(/^http/, 'ws')}/api/v1/live/ws`, clients: ws.clients })
        : undefined;
    const rawProbe = probe({
      role: 'raw',
      redisUrl: redisServer.url,
      streams: ws.rawStreams,
      weights: ws.rawWeights,
    });
    const strategyProbe =
      strategies.length > 0
        ? probe({
            role: 'strategy',
            redisUrl: redisServer.url,
            candleStreams: [...new Set(strategies.map((s) => streams.candles('1m', s.instrumentKey)))],
            metricStreams: users.map((u) => streams.strategyMetrics(u.userId)),
          })
        : undefined;
    for (const p of probes) await step(p.next('ready', 180_000));
    say(
      `soak: ${o.clients} WebSocket clients subscribed (${ws.watched} instruments watched); raw baseline on ${ws.rawStreams.length} streams`,
    );

    // Every stream the system writes, for the entries Redis holds.
    const allStreams = [
      ...keys.flatMap((k) => [streams.candles('1m', k), streams.candles('5m', k), streams.prices(k)]),
      ...users.flatMap((u) => [streams.strategyMetrics(u.userId), streams.strategyEvents(u.userId)]),
      streams.feedStatus('simulated'),
    ];
    const procs = { feed: feed.pid, runner: runner.pid, api: api.pid, redis: redisPid };
    const probePids: Record<string, number> = Object.fromEntries(
      probes.map((p) => [`${p.role}_probe`, p.pid]),
    );
    const cpuPrev = new Map<string, number>();
    const rows: Row[] = [];
    const t0 = Date.now();
    let prev: { at: number; c: Counters } = { at: t0, c: await readCounters(endpoints, redis) };
    let atWarmupEnd: { at: number; c: Counters } | undefined;
    const services = [feed, runner, api];

    for (let k = 1; ; k++) {
      const due = t0 + k * o.sampleInterval * 1000;
      if (due > t0 + o.duration * 1000 + 1) break;
      await sleep(Math.max(0, due - Date.now()), abort);
      if (abort.aborted) throw new Error('interrupted');
      for (const s of services)
        if (!s.running) throw new Error(`${s.name} exited during the run (${s.ending}):\n${s.tail()}`);
      if (!redisServer.running) throw new Error('redis-server exited during the run');
      const now = Date.now();
      const t = (now - t0) / 1000;
      const [c, entries, windows] = await Promise.all([
        readCounters(endpoints, redis),
        totalEntries(redis, allStreams),
        Promise.all([wsProbe?.window(3000), rawProbe.window(3000), strategyProbe?.window(3000)]),
      ]);
      const rss: Record<string, number | null> = {};
      const cpu: Record<string, number | null> = {};
      const dt = (now - prev.at) / 1000;
      const cpuOf = (name: string, seconds: number | null): void => {
        const before = cpuPrev.get(name);
        cpu[name] =
          seconds === null || before === undefined ? null : Math.round(((seconds - before) / dt) * 1000) / 10;
        if (seconds !== null) cpuPrev.set(name, seconds);
      };
      for (const [name, pid] of Object.entries({ ...procs, ...probePids })) {
        rss[name] = rssMiB(pid);
        cpuOf(name, cpuSeconds(pid));
      }
      rss['postgres_pss'] = treePssMiB(pgServer.pid);
      cpuOf('postgres', treeCpuSeconds(pgServer.pid));
      rss['coordinator'] = rssMiB(process.pid);
      const row: Row = {
        t: Math.round(t * 10) / 10,
        measuring: atWarmupEnd !== undefined,
        rss_mib: rss,
        cpu_pct: cpu,
        redis_used_memory_mib: (c['redis_used_memory'] ?? NaN) / 2 ** 20,
        redis_used_memory_rss_mib: (c['redis_used_memory_rss'] ?? NaN) / 2 ** 20,
        redis_entries: entries,
        prev: prev.c,
        cur: c,
        dt,
        ws: windows[0] ?? null,
        raw: windows[1] ?? null,
        strategy: windows[2] ?? null,
        load1: loadavg()[0] ?? NaN,
      };
      rows.push(row);
      say(progressLine(row, o.duration));
      prev = { at: now, c };
      // A timer may fire a hair before its due time: half a second of slack.
      if (!atWarmupEnd && t >= o.warmup - 0.5) {
        atWarmupEnd = { at: now, c };
        for (const p of probes) p.post({ type: 'measure' });
        say(`soak: warm-up over at ${Math.round(t)} s; measuring`);
      }
    }
    const end = { at: Date.now(), c: await readCounters(endpoints, redis) };
    const finals: Record<string, FinalStats | undefined> = {};
    for (const p of probes) finals[p.role] = await p.finish(30_000);

    // Memory of sample streams: 20 instruments spread over the list, and every user stream.
    const sampleKeys = Array.from(
      { length: Math.min(20, keys.length) },
      (_, i) => keys[Math.floor((i * keys.length) / Math.min(20, keys.length))] as string,
    );
    const memorySamples = [];
    for (const key of sampleKeys)
      for (const s of [streams.candles('1m', key), streams.candles('5m', key), streams.prices(key)])
        memorySamples.push(await streamMemory(redis, s));
    for (const u of users)
      for (const s of [streams.strategyMetrics(u.userId), streams.strategyEvents(u.userId)])
        memorySamples.push(await streamMemory(redis, s));
    const entriesEnd = await totalEntries(redis, allStreams);

    // Error and fatal lines of each service's log (the first few kept, to say what they were).
    const logErrors: Record<string, { count: number; first: string[] }> = {};
    for (const s of services) {
      const lines = s
        .log()
        .split('\n')
        .filter((l) => /"level":(50|60)/.test(l));
      logErrors[s.name] = { count: lines.length, first: lines.slice(0, 3).map((l) => l.slice(0, 500)) };
    }

    const run: Run = {
      options: o,
      startedAt,
      machine: {
        cpus: cpus().length,
        cpu_model: cpus()[0]?.model ?? '?',
        mem_gib: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        redis: redisVersion,
        postgres: pg.version,
        loadavg_start: load0.map((x) => Math.round(x * 100) / 100),
        loadavg_end: loadavg().map((x) => Math.round(x * 100) / 100),
      },
      instruments: keys.length,
      strategies: strategies.length,
      users: users.length,
      clients: o.clients,
      watchedInstruments: ws.watched,
      rawStreams: ws.rawStreams.length,
      rows,
      warmupEnd: atWarmupEnd ?? end,
      end,
      t0,
      finals,
      memorySamples,
      entriesEnd,
      usedMemoryEmpty,
      logErrors,
    };
    const { report, plot } = buildReport(run);
    mkdirSync(dirname(out), { recursive: true });
    // Written as the repository's Prettier would write it, so that `npm run lint` accepts the file as is.
    const prettierOptions = (await resolveConfig(out)) ?? {};
    writeFileSync(out, await format(JSON.stringify(report, null, 2), { ...prettierOptions, parser: 'json' }));
    writeFileSync(plotFile, linePlotSvg(plot.series, plot.options));
    process.stdout.write(`${summaryTable(report)}\n`);
    say(`soak: report ${out}\nsoak: plot ${plotFile}`);
    ok = true;
  } finally {
    if (redis) redis.destroy();
    say('soak: stopping everything ...');
    await children.stopAll();
    if (o.keep || !ok) {
      // The logs (and the config) say what happened; the data is of no use after the run.
      for (const d of ['redis', 'data']) rmSync(join(tmp, d), { recursive: true, force: true });
      say(`soak: service logs kept in ${logDir}`);
    } else rmSync(tmp, { recursive: true, force: true });
  }
}

const parsed = parseOptions(process.argv.slice(2));
if (parsed !== 'help') {
  const children = new Children();
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) {
      say(`soak: ${sig} again: killing everything now`);
      children.killAll();
      process.exit(130);
    }
    say(`soak: ${sig}: stopping (again to kill at once)`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  process.on('exit', () => children.killAll());
  // Bounded whatever happens: the run, plus set-up and shut-down room.
  const watchdog = setTimeout(
    () => {
      say('soak: overall time limit reached; killing everything');
      children.killAll();
      process.exit(2);
    },
    (parsed.duration + 900) * 1000,
  );
  watchdog.unref();
  try {
    await main(parsed, abort.signal, children);
  } catch (err) {
    say(`soak failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = abort.signal.aborted ? 130 : 1;
  } finally {
    clearTimeout(watchdog);
  }
  // Nothing may outlive the soak: check every process it started.
  for (let i = 0; i < 50 && [...children.pids.keys()].some(isAlive); i++) await sleep(100);
  const left = [...children.pids].filter(([pid]) => isAlive(pid));
  for (const [pid, name] of left) {
    say(`soak: ${name} (pid ${pid}) still running after the cleanup; killing it`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (left.length === 0) say('soak: all child processes have exited');
}
