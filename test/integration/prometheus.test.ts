/**
 * The deployment's monitoring against the real thing (deploy/, issue 8).
 *
 * Static: promtool accepts deploy/prometheus (scrape config, alert rules) and passes the rules' unit
 * tests; deploy/config/{dev,prod}.yaml load with the real config loader; the compose file gives every
 * service its own Redis user and the ports Prometheus scrapes.
 *
 * Live: Redis set up as compose sets it up (the ACL file written by deploy/redis/make-acl.sh with
 * `marketbus redis acl`, default user off), the `feed`, `runner` and `api` commands run as child
 * processes with the exact command lines and REDIS_URLs of deploy/compose.yaml (hosts and ports
 * pointed at this test's redis-server, PostgreSQL and free ports; MARKETBUS_ENV=dev), and Debian's
 * Prometheus runs deploy/prometheus/prometheus.yml (targets pointed at them, 1 s intervals) with
 * deploy/prometheus/alerts.yml. Then: every target is up, every rule group evaluates with health ok,
 * the expected series exist, every metric name in the alert rules and the Grafana dashboard is one the
 * services export (and every dashboard query runs), and a dead letter made through the runner's real
 * consumer path turns MarketbusDeadLetters on until `marketbus dlq purge` clears it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ACL_USERS, type AclUser } from '../../src/acl/rules.js';
import { passwordEnvVar } from '../../src/acl/secrets.js';
import { rawMarketData } from '../../src/cli/commands/feed.js';
import { closeRedis, connectRedis } from '../../src/bus/connection.js';
import { loadConfig } from '../../src/config/load.js';
import { feedRedisOptions, resolveMarketData } from '../../src/app/feed.js';
import { BusHealthMetrics } from '../../src/bus/health-metrics.js';
import { resolveRedisTarget } from '../../src/app/redis-target.js';
import { runCli } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import {
  exposedMetricNames,
  freePort,
  metricNamesInPromQL,
  promtool,
  requirePrometheus,
  startPrometheus,
  type PrometheusProcess,
} from '../helpers/prometheus.js';
import { startRedis } from '../helpers/redis.js';
import { CATALOG_POLICY } from '../../src/contracts/catalog.js';

const run = promisify(execFile);
const ROOT = process.cwd();
const PROM_DIR = join(ROOT, 'deploy', 'prometheus');
const ALERTS = join(PROM_DIR, 'alerts.yml');
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'dashboards', 'marketbus.json');
const COMPOSE = join(ROOT, 'deploy', 'compose.yaml');
/** Services of the compose file that run marketbus, and the Redis user each must run as. */
const SERVICE_USERS: Readonly<Record<string, AclUser>> = {
  feed: 'feed',
  runner: 'runner',
  api: 'api',
  backtester: 'backtester',
  trimmer: 'ops',
  ops: 'ops',
};

// ---- the files --------------------------------------------------------------------------------

interface RuleFile {
  groups: { name: string; rules: { alert?: string; expr: string }[] }[];
}
interface ScrapeConfig {
  job_name: string;
  static_configs: { targets: string[] }[];
}
interface PromConfig {
  global: Record<string, string>;
  rule_files: string[];
  scrape_configs: ScrapeConfig[];
}
interface ComposeService {
  command?: string[];
  environment?: Record<string, string>;
  image?: string;
  build?: { context: string; dockerfile: string };
}
interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

const readYamlFile = (file: string): unknown => parseYaml(readFileSync(file, 'utf8'), { merge: true });
const rules = (): RuleFile => readYamlFile(ALERTS) as RuleFile;
const promConfig = (): PromConfig => readYamlFile(join(PROM_DIR, 'prometheus.yml')) as PromConfig;
const compose = (): { services: Record<string, ComposeService> } =>
  readYamlFile(COMPOSE) as { services: Record<string, ComposeService> };

function alertExprs(): string[] {
  return rules().groups.flatMap((g) => g.rules.map((r) => r.expr));
}

function dashboardExprs(): { title: string; expr: string }[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
  const out: { title: string; expr: string }[] = [];
  const walk = (ps: readonly Panel[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) out.push({ title: p.title, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dash.panels);
  return out;
}

/** Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?message}`, `$$`. */
function interpolate(s: string, env: Readonly<Record<string, string>>): string {
  return s.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g,
    (m, name?: string, op?: string, arg?: string) => {
      if (m === '$$') return '$';
      const v = env[name ?? ''];
      if (v !== undefined && v !== '') return v;
      if (op === ':?') throw new Error(`compose needs ${name ?? ''}: ${arg ?? ''}`);
      return op === ':-' ? (arg ?? '') : '';
    },
  );
}

// ---- static checks ----------------------------------------------------------------------------

describe('deploy/prometheus with promtool', () => {
  it('check config and check rules accept the scrape config and the alert rules', async () => {
    const config = await promtool(['check', 'config', 'prometheus.yml'], PROM_DIR);
    expect(config.code, config.stdout + config.stderr).toBe(0);
    expect(config.stdout).toContain('SUCCESS: 1 rule files found');
    const checked = await promtool(['check', 'rules', 'alerts.yml'], PROM_DIR);
    expect(checked.code, checked.stdout + checked.stderr).toBe(0);
    const count = rules().groups.reduce((n, g) => n + g.rules.length, 0);
    expect(checked.stdout).toContain(`SUCCESS: ${count} rules found`);
    // The five conditions each have a rule.
    const names = rules().groups.flatMap((g) => g.rules.map((r) => r.alert));
    for (const a of [
      'MarketbusPendingGrowing',
      'MarketbusAckRateFalling',
      'MarketbusPublishErrors',
      'MarketbusFeedStale',
      'MarketbusFeedDisconnected',
      'MarketbusDeadLetters',
    ])
      expect(names).toContain(a);
  });

  it('the rules pass their unit tests (promtool test rules), and a broken expectation fails them', async () => {
    const ok = await promtool(['test', 'rules', 'alerts.test.yml'], PROM_DIR);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain('SUCCESS');
    // The tests can fail: the same tests against a rule that never fires.
    const dir = mkdtempSync(join(tmpdir(), 'marketbus-rules-'));
    try {
      writeFileSync(
        join(dir, 'alerts.yml'),
        readFileSync(ALERTS, 'utf8').replace('bus_health_dead_letters > 0', 'bus_health_dead_letters > 1e9'),
      );
      writeFileSync(join(dir, 'alerts.test.yml'), readFileSync(join(PROM_DIR, 'alerts.test.yml'), 'utf8'));
      const broken = await promtool(['test', 'rules', 'alerts.test.yml'], dir);
      expect(broken.code).not.toBe(0);
      expect(broken.stdout + broken.stderr).toContain('alertname: MarketbusDeadLetters');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy configs and compose file', () => {
  it('dev.yaml and prod.yaml load with the real config loader, and say where the feed publishes', () => {
    const noRedisEnv = { REDIS_URL: '' };
    for (const file of ['deploy/config/dev.yaml', 'deploy/config/prod.yaml']) {
      const config = loadConfig(file);
      const md = resolveMarketData(rawMarketData(file), {});
      expect(md.instruments.length).toBeGreaterThan(0);
      // REDIS_URL (compose gives one per service) wins over the file; without it the file's Redis.
      const viaEnv = resolveRedisTarget({
        section: config.redis,
        dataDir: config.data_dir,
        env: { REDIS_URL: 'redis://feed:pw@redis:6379/0' },
      });
      expect(feedRedisOptions(md, viaEnv, true)).toEqual({ url: 'redis://feed:pw@redis:6379/0' });
      const fromFile = resolveRedisTarget({
        section: config.redis,
        dataDir: config.data_dir,
        env: noRedisEnv,
      });
      expect(feedRedisOptions(md, fromFile, true)).toMatchObject({
        host: file.includes('prod') ? 'redis' : '127.0.0.1',
        port: 6379,
      });
    }
    expect(resolveMarketData(rawMarketData('deploy/config/prod.yaml'), {}).source).toBe('binance');
    expect(resolveMarketData(rawMarketData('deploy/config/dev.yaml'), {}).source).toBe('simulated');
    expect(loadConfig('deploy/config/prod.yaml').streams.retention.candles).toEqual({
      kind: 'maxlen',
      maxLen: 10080,
    });
  });

  it('compose runs each service from deploy/Dockerfile as its own Redis user, on the ports Prometheus scrapes', () => {
    const { services } = compose();
    const env: Record<string, string> = { POSTGRES_PASSWORD: 'p', CLICKHOUSE_PASSWORD: 'c' };
    for (const u of [...ACL_USERS, 'admin']) env[`MARKETBUS_REDIS_PASSWORD_${u.toUpperCase()}`] = `pw-${u}`;
    for (const [name, user] of Object.entries(SERVICE_USERS)) {
      const s = services[name];
      expect(s, name).toBeDefined();
      expect(s?.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      const url = interpolate(s?.environment?.['REDIS_URL'] ?? '', env);
      expect(url, name).toBe(`redis://${user}:pw-${user}@redis:6379/0`);
      expect(s?.environment?.['REDIS_URL']).toContain(`\${${passwordEnvVar(user)}:?`);
    }
    // The scrape targets are the compose services and the ports their commands listen on.
    const portOf = (svc: string, flag: string): string => {
      const cmd = services[svc]?.command ?? [];
      return cmd[cmd.indexOf(flag) + 1] ?? '';
    };
    const targets = Object.fromEntries(
      promConfig().scrape_configs.map((j) => [j.job_name, j.static_configs.flatMap((c) => c.targets)]),
    );
    expect(targets['marketbus-feed']).toEqual([`feed:${portOf('feed', '--metrics-port')}`]);
    expect(targets['marketbus-runner']).toEqual([`runner:${portOf('runner', '--metrics-port')}`]);
    expect(targets['marketbus-api']).toEqual([`api:${portOf('api', '--port')}`]);
    expect(targets['marketbus-feed']).toEqual(['feed:8001']);
    expect(targets['marketbus-runner']).toEqual(['runner:9203']);
    expect(targets['marketbus-api']).toEqual(['api:8000']);
  });

  it('finds metric names in PromQL: selectors, not functions, labels, keywords or durations', () => {
    expect(
      metricNamesInPromQL(
        'sum by (job, instance) (rate(a_total{x="y",z=~"b_.*"}[5m] offset 1h)) < 0.9 * on (job) group_left b_seconds_bucket or vector(0) and up',
      ),
    ).toEqual(['a_total', 'b_seconds_bucket', 'up']);
    expect(
      metricNamesInPromQL(`histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))`),
    ).toEqual(['h_bucket']);
    expect(
      [...exposedMetricNames('# HELP h x\n# TYPE h histogram\n# TYPE c_total counter\n')].sort(),
    ).toEqual(['c_total', 'h', 'h_bucket', 'h_count', 'h_sum']);
  });
});

describe('bus_health_* (src/bus/health-metrics.ts) on a real Redis', () => {
  it('per stream and group: length, pending, lag, oldest pending, dead letters; per-user streams summed without ids; up 0 when Redis is gone', async () => {
    const server = await startRedis({ persistence: 'none' });
    const raw = createClient({ url: server.url });
    raw.on('error', () => undefined);
    await raw.connect();
    const candles = 'md.candles.1m.sim:spot:HEALTHX';
    for (const id of ['60000-0', '120000-0', '180000-0']) await raw.xAdd(candles, id, { close: '1' });
    await raw.xGroupCreate(candles, 'strategy.live_runner', '0');
    // One entry delivered and never acknowledged; two never delivered.
    await raw.xReadGroup('strategy.live_runner', 'c1', { key: candles, id: '>' }, { COUNT: 1 });
    await raw.xAdd('dlq:{' + candles + '}', '*', { reason: 'max-deliveries' });
    await raw.xAdd('strategy.events.v1.user.u-1', '*', { type: 'started' });
    await raw.xAdd('strategy.events.v1.user.u-2', '*', { type: 'started' });
    await raw.xAdd('strategy.events.v1.user.u-2', '*', { type: 'signal' });
    const client = await connectRedis({ url: server.url, reconnectBaseMs: 50, reconnectMaxMs: 200 });
    try {
      const registry = new Registry();
      expect(
        BusHealthMetrics.register(registry, client, {
          policy: CATALOG_POLICY,
          maxAgeMs: 0,
          timeoutMs: 1000,
        }),
      ).toBeDefined();
      // A second API server in the same process leaves the registry's gauges alone.
      expect(BusHealthMetrics.register(registry, client, { policy: CATALOG_POLICY })).toBeUndefined();
      const text = await registry.metrics();
      const g = `stream="${candles}",kind="candles",group="strategy.live_runner"`;
      expect(text).toContain('bus_health_up 1');
      expect(text).toContain(`bus_health_stream_length{stream="${candles}",kind="candles"} 3`);
      expect(text).toContain(`bus_health_group_pending{${g}} 1`);
      expect(text).toContain(`bus_health_group_lag{${g}} 2`);
      expect(text).toContain(`bus_health_group_consumers{${g}} 1`);
      expect(text).toMatch(
        new RegExp(`bus_health_group_oldest_pending_seconds\\{${g.replace(/[.{}]/g, '\\$&')}\\} [0-9.]+`),
      );
      expect(text).toContain(`bus_health_dead_letters{stream="${candles}",kind="candles"} 1`);
      expect(text).toContain(
        'bus_health_stream_length{stream="strategy.events.v1.user.*",kind="strategy-events"} 3',
      );
      expect(text).toContain('bus_health_streams{kind="strategy-events"} 2');
      expect(text).not.toMatch(/u-1|u-2/);
      // Redis gone: the look fails within its timeout, old numbers are dropped.
      await server.kill();
      const down = await registry.metrics();
      expect(down).toContain('bus_health_up 0');
      expect(down).not.toMatch(/^bus_health_stream_length\{/m);
      expect(down).not.toMatch(/^bus_health_dead_letters\{/m);
    } finally {
      raw.destroy();
      await closeRedis(client);
    }
  });
});

// ---- live -------------------------------------------------------------------------------------

interface Service {
  readonly name: string;
  readonly child: ChildProcess;
  stderr(): string;
}

const children: Service[] = [];
const passwords = Object.fromEntries(
  [...ACL_USERS, 'admin'].map((u) => [u, randomBytes(12).toString('hex')]),
) as Record<AclUser | 'admin', string>;
const passwordEnv = Object.fromEntries(
  Object.entries(passwords).map(([u, p]) => [`MARKETBUS_REDIS_PASSWORD_${u.toUpperCase()}`, p]),
);

type Raw = ReturnType<typeof createClient>;
let redisPort = 0;
let admin: Raw | undefined;
let prom: PrometheusProcess;
const metricsUrls: Record<string, string> = {};
let work = '';

function userUrl(user: AclUser | 'admin'): string {
  return `redis://${user}:${passwords[user]}@127.0.0.1:${redisPort}/0`;
}

/**
 * Start a compose service's marketbus command from the sources: its `command` (interpolated with
 * MARKETBUS_ENV=dev, /app/ -> the repository, `replace` applied to flag values) and its REDIS_URL
 * pointed at this test's Redis.
 */
function startService(
  name: string,
  replace: Readonly<Record<string, string>>,
  env: NodeJS.ProcessEnv,
): Service {
  const svc = compose().services[name];
  if (!svc?.command) throw new Error(`compose service ${name} has no command`);
  const vars = { MARKETBUS_ENV: 'dev', ...passwordEnv, POSTGRES_PASSWORD: 'x', CLICKHOUSE_PASSWORD: 'x' };
  const args = svc.command.map((a) => {
    const v = interpolate(a, vars).replace(/^\/app\//, `${ROOT}/`);
    return replace[v] ?? v;
  });
  const redisUrl = interpolate(svc.environment?.['REDIS_URL'] ?? '', vars).replace(
    '@redis:6379',
    `@127.0.0.1:${redisPort}`,
  );
  let stderr = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      MARKETBUS_SOURCE: '',
      MARKETBUS_INSTRUMENTS: '',
      MARKETBUS_SPEED: '',
      TELEGRAM_BOT_TOKEN: '',
      CLICKHOUSE_URL: '',
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      ...env,
      REDIS_URL: redisUrl,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 400_000) stderr = stderr.slice(-200_000);
  });
  const s: Service = { name, child, stderr: () => stderr };
  children.push(s);
  return s;
}

async function waitLog(s: Service, re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(s.stderr());
    if (m) return m;
    if (s.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${s.name} did not start (${re.source}):\n${s.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

async function query(q: string): Promise<Sample[]> {
  return (await prom.api<{ result: Sample[] }>('/api/v1/query', { query: q })).result;
}

interface Alert {
  readonly labels: Record<string, string>;
  readonly state: 'pending' | 'firing';
}

async function alerts(): Promise<Alert[]> {
  return (await prom.api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts;
}

describe('Prometheus scraping the running services (compose commands, ACL users)', () => {
  beforeAll(async () => {
    requirePrometheus(); // fails (never skips) with what to install
    work = mkdtempSync(join(tmpdir(), 'marketbus-prom-test-'));
    // Redis as compose starts it: the ACL file of deploy/redis/make-acl.sh. The helper's readiness
    // PING needs the default user, so the server starts with an open default and loads the file after.
    const aclFile = join(work, 'users.acl');
    writeFileSync(aclFile, 'user default on nopass ~* &* +@all\n');
    const server = await startRedis({ persistence: 'none', extraArgs: ['--aclfile', aclFile] });
    redisPort = server.port;
    await run('sh', ['deploy/redis/make-acl.sh', aclFile], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...passwordEnv,
        MARKETBUS_CLI: `${process.execPath} --import tsx src/cli/main.ts`,
      },
      timeout: 60_000,
    });
    const boot = createClient({ url: server.url });
    boot.on('error', () => undefined);
    await boot.connect();
    await boot.sendCommand(['ACL', 'LOAD']);
    boot.destroy();
    admin = createClient({ url: userUrl('admin') });
    admin.on('error', () => undefined);
    await admin.connect();

    // As compose's one-shot `redis-code` service: the operator loads the Redis Functions (and
    // BullMQ's scripts) the service users may call but not load.
    const loaded = await runCli(['redis', 'functions', 'load'], { env: { REDIS_URL: userUrl('ops') } });
    expect(loaded.code, loaded.stderr).toBe(0);

    const pg = await startPostgres();
    const dbUrl = (await pg.createDatabase()) ?? pg.url;
    const [feedPort, runnerPort] = [await freePort(), await freePort()];
    // The simulated source at 600x: a closed candle per instrument every 0.1 s.
    const feed = startService(
      'feed',
      { '8001': String(feedPort) },
      { DATABASE_URL: dbUrl, MARKETBUS_SPEED: '600' },
    );
    const runner = startService('runner', { '9203': String(runnerPort) }, { DATABASE_URL: dbUrl });
    const api = startService('api', { '8000': '0', '0.0.0.0': '127.0.0.1' }, { DATABASE_URL: dbUrl });
    await waitLog(feed, /"msg":"metrics on \/metrics"/);
    await waitLog(runner, /"msg":"runner up"/);
    const apiPort = (await waitLog(api, /marketbus api on http:\/\/127\.0\.0\.1:(\d+)/))[1] ?? '';
    metricsUrls['feed'] = `http://127.0.0.1:${feedPort}/metrics`;
    metricsUrls['runner'] = `http://127.0.0.1:${runnerPort}/metrics`;
    metricsUrls['api'] = `http://127.0.0.1:${apiPort}/metrics`;

    // deploy/prometheus/prometheus.yml with its targets pointed at the services, and 1 s intervals.
    const repo = promConfig();
    const live: Readonly<Record<string, string>> = {
      'feed:8001': `127.0.0.1:${feedPort}`,
      'runner:9203': `127.0.0.1:${runnerPort}`,
      'api:8000': `127.0.0.1:${apiPort}`,
    };
    prom = await startPrometheus((self) => ({
      ...repo,
      global: { ...repo.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [ALERTS],
      scrape_configs: repo.scrape_configs.map((j) => ({
        ...j,
        static_configs: j.static_configs.map((c) => ({
          targets: c.targets.map((t) => {
            const to = t === 'localhost:9090' ? self : live[t];
            if (!to) throw new Error(`prometheus.yml target ${t} has no counterpart in this test`);
            return to;
          }),
        })),
      })),
    }));
  }, 180_000);

  afterAll(async () => {
    await admin?.close().catch(() => undefined);
    await Promise.allSettled(
      children.map(async (s) => {
        if (s.child.exitCode !== null) return;
        const exited = new Promise((r) => s.child.once('exit', r));
        s.child.kill('SIGTERM');
        const t = setTimeout(() => s.child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }),
    );
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('Redis runs with the ACL file of make-acl.sh: no default user, each service its own', async () => {
    const anonymous = createClient({ url: `redis://127.0.0.1:${redisPort}` });
    anonymous.on('error', () => undefined);
    await anonymous.connect();
    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    anonymous.destroy();
    const users = ((await admin?.sendCommand(['ACL', 'USERS'])) as string[]).sort();
    expect(users).toEqual([...ACL_USERS, 'admin', 'default'].sort());
    // Every service is connected as its own user.
    const list = (await admin?.sendCommand(['CLIENT', 'LIST'])) as string;
    for (const [name, user] of [
      ['marketbus-feed', 'feed'],
      ['marketbus-runner', 'runner'],
      ['marketbus-api', 'api'],
    ])
      expect(list).toMatch(new RegExp(`name=${name} .*user=${user} `));
  });

  it('every target is up and every rule group of alerts.yml evaluates with health ok', async () => {
    const jobs = promConfig()
      .scrape_configs.map((j) => j.job_name)
      .sort();
    await vi.waitFor(
      async () => {
        const t = await prom.api<{
          activeTargets: { labels: Record<string, string>; health: string; lastError: string }[];
        }>('/api/v1/targets');
        expect(t.activeTargets.map((x) => x.labels['job']).sort()).toEqual(jobs);
        for (const x of t.activeTargets)
          expect(x.health, `${x.labels['job'] ?? ''}: ${x.lastError}`).toBe('up');
      },
      { timeout: 30_000, interval: 500 },
    );
    const expected = rules().groups;
    await vi.waitFor(
      async () => {
        const got = await prom.api<{
          groups: {
            name: string;
            lastEvaluation: string;
            rules: { name: string; health: string; lastError?: string }[];
          }[];
        }>('/api/v1/rules');
        expect(got.groups.map((g) => g.name)).toEqual(expected.map((g) => g.name));
        for (const g of got.groups) {
          expect(g.lastEvaluation.startsWith('0001-'), `${g.name} not evaluated yet`).toBe(false);
          expect(g.rules).toHaveLength(expected.find((e) => e.name === g.name)?.rules.length ?? -1);
          for (const r of g.rules) expect(r.health, `${r.name}: ${r.lastError ?? ''}`).toBe('ok');
        }
      },
      { timeout: 30_000, interval: 500 },
    );
  });

  it('the series the alerts and the dashboard read are there, with live values', async () => {
    const wanted: readonly [string, string][] = [
      // The API reads stream health from Redis as its ACL user.
      ['bus_health_up == 1', 'api'],
      ['redis_publish_total > 0', 'feed'],
      ['feed_state{source="simulated",state="STREAM"} == 1', 'feed'],
      ['bus_health_stream_length{stream="md.candles.1m.binance:spot:BTCUSDT",kind="candles"} > 0', 'api'],
      // The runner's command group exists, nothing pending.
      ['bus_health_group_pending{stream="mgmt:strategy:commands",group="strategy.workers"} == 0', 'api'],
      ['strategy_live_runner_iterations_total', 'runner'],
      ['live_ws_clients == 0', 'api'],
      ['up{job="marketbus-feed"} == 1', 'feed'],
    ];
    for (const [q, job] of wanted) {
      await vi.waitFor(
        async () => {
          const r = await query(q);
          expect(r.length, `${q} (${job})`).toBeGreaterThan(0);
          expect(r[0]?.metric['job'] ?? `marketbus-${job}`).toBe(`marketbus-${job}`);
        },
        { timeout: 30_000, interval: 500 },
      );
    }
  });

  it('every metric in alerts.yml and the Grafana dashboard is exported by a service, and every panel query runs', async () => {
    const exported = new Set<string>();
    for (const url of Object.values(metricsUrls)) {
      const r = await fetch(url);
      expect(r.status, url).toBe(200);
      for (const n of exposedMetricNames(await r.text())) exported.add(n);
    }
    const fromAlerts = alertExprs().flatMap(metricNamesInPromQL);
    const fromDashboard = dashboardExprs().flatMap((p) => metricNamesInPromQL(p.expr));
    expect(fromAlerts).toContain('bus_health_dead_letters');
    expect(fromDashboard).toContain('redis_publish_total');
    expect(fromDashboard).toContain('live_ws_clients');
    // `up` is Prometheus's own, checked above.
    const missing = [...new Set([...fromAlerts, ...fromDashboard])].filter(
      (n) => n !== 'up' && !exported.has(n),
    );
    expect(missing).toEqual([]);
    // Each panel's query is valid PromQL for this Prometheus (Grafana's $__rate_interval as 1m).
    for (const p of dashboardExprs()) {
      await expect(query(p.expr.replaceAll('$__rate_interval', '1m')), p.title).resolves.toBeInstanceOf(
        Array,
      );
    }
  });

  it('a dead letter made by the runner turns MarketbusDeadLetters on; `marketbus dlq purge` ends it', async () => {
    const stream = 'mgmt:strategy:commands';
    // Not a command envelope: the runner's command consumer dead-letters it at once (DecodeError).
    await admin?.xAdd(stream, '*', { garbage: 'not an envelope' });
    await vi.waitFor(
      async () => {
        const a = (await alerts()).find((x) => x.labels['alertname'] === 'MarketbusDeadLetters');
        expect(a, 'MarketbusDeadLetters not active').toBeDefined();
        expect(a?.state).toBe('firing');
        expect(a?.labels).toMatchObject({ stream, kind: 'service-commands', severity: 'warning' });
      },
      { timeout: 30_000, interval: 500 },
    );
    // The runbook's commands, as the operator user.
    const ops = { REDIS_URL: userUrl('ops') };
    const listed = await runCli(['dlq', 'list', stream, '--json'], { env: ops });
    expect(listed.code, listed.stderr).toBe(0);
    const letters = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { group: string; reason: string; fields: Record<string, string> });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ group: 'strategy.workers', fields: { garbage: 'not an envelope' } });
    const purged = await runCli(['dlq', 'purge', stream], { env: ops });
    expect(purged.code, purged.stderr).toBe(0);
    await vi.waitFor(
      async () => {
        expect((await alerts()).filter((x) => x.labels['alertname'] === 'MarketbusDeadLetters')).toEqual([]);
      },
      { timeout: 30_000, interval: 500 },
    );
    // Nothing else fires on a healthy stack.
    expect((await alerts()).map((a) => a.labels['alertname'])).toEqual([]);
    // And no service was refused anything by Redis while Prometheus watched (the API's stream health
    // included): every command they sent is within their ACL users' rights.
    const refused = ((await admin?.sendCommand(['ACL', 'LOG', '128'])) as unknown[][]).map((e) =>
      e.map(String).join(' '),
    );
    expect(refused.filter((e) => !/reason auth\b/.test(e))).toEqual([]);
  });

  it('the compose healthcheck of heartbeat-only services passes while one heartbeats and fails otherwise', async () => {
    const check = (service: string): Promise<{ code: number; stderr: string }> =>
      new Promise((resolve) => {
        execFile(
          process.execPath,
          ['deploy/healthcheck/service-status.mjs', service],
          { cwd: ROOT, env: { ...process.env, REDIS_URL: userUrl('ops') }, timeout: 20_000 },
          (err, _out, stderr) => resolve({ code: typeof err?.code === 'number' ? err.code : 0, stderr }),
        );
      });
    // The runner serves `strategy` commands and heartbeats on strategy:status.
    expect(await check('strategy')).toMatchObject({ code: 0 });
    const none = await check('backtesting');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no running backtesting instance');
  });
});
