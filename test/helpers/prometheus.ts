/**
 * Debian's Prometheus in tests: `promtool` runs, a `prometheus` child process on a free port with its
 * data in a temporary directory (killed and removed after the test file, and killed if the test
 * process exits first), its HTTP API, and the metric names that PromQL expressions and Prometheus text
 * expositions contain (to check dashboards and alert rules against what the services export).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { stringify } from 'yaml';
import { findExecutable } from '../../src/bus/redis-server.js';

export const PROMETHEUS_INSTALL_HINT =
  'Prometheus is not installed (/usr/bin/prometheus and /usr/bin/promtool, Debian package `prometheus`). ' +
  'Run `npm test` (scripts/setup.mjs installs it) or: sudo apt-get install -y prometheus';

export interface PrometheusBinaries {
  readonly prometheus: string;
  readonly promtool: string;
}

/** Both binaries, or an Error that says what to install. */
export function requirePrometheus(): PrometheusBinaries {
  const prometheus = findExecutable('prometheus');
  const promtool = findExecutable('promtool');
  if (!prometheus || !promtool) throw new Error(PROMETHEUS_INSTALL_HINT);
  return { prometheus, promtool };
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run promtool with `args` in `cwd`; resolves with its exit code and output (never rejects on exit code). */
export function promtool(args: readonly string[], cwd: string): Promise<ToolResult> {
  const bin = requirePrometheus().promtool;
  return new Promise((resolve, reject) => {
    execFile(bin, [...args], { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`promtool ${args.join(' ')} did not run: ${err.message}`, { cause: err }));
        return;
      }
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface PrometheusProcess {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** `GET <url><path>?<params>` of the HTTP API; resolves with `data`, rejects with Prometheus's error. */
  api<T>(path: string, params?: Record<string, string>): Promise<T>;
  /** What Prometheus logged so far (for failure messages). */
  logs(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the data directory. Idempotent. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const stops: (() => Promise<void>)[] = [];

// Belt and braces: a test process ending without afterAll (crash, timeout) must not leave Prometheus behind.
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

afterAll(async () => {
  await Promise.allSettled(stops.map((s) => s()));
});

interface ApiReply<T> {
  readonly status: 'success' | 'error';
  readonly data?: T;
  readonly error?: string;
  readonly errorType?: string;
}

async function waitReady(url: string, child: ChildProcess, logs: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode}):\n${logs().slice(-3000)}`);
    try {
      const r = await fetch(`${url}/-/ready`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`prometheus not ready after 30 s:\n${logs().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Start Prometheus with `config` (a prometheus.yml as an object, or a function of Prometheus's own
 * `host:port` returning one; written as YAML into a fresh temporary directory, with the TSDB beside
 * it) on a free port of 127.0.0.1.
 */
export async function startPrometheus(
  config: Record<string, unknown> | ((self: string) => Record<string, unknown>),
): Promise<PrometheusProcess> {
  const bin = requirePrometheus().prometheus;
  const dir = mkdtempSync(join(tmpdir(), 'marketbus-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  let lastError: unknown;
  // The port is free when chosen, not necessarily when Prometheus binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    writeFileSync(configFile, stringify(typeof config === 'function' ? config(`127.0.0.1:${port}`) : config));
    let output = '';
    const child = spawn(
      bin,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    const append = (d: Buffer): void => {
      output += d.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    exited.then(
      () => running.delete(child),
      () => undefined,
    );
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    };
    try {
      await waitReady(url, child, () => output);
    } catch (err) {
      lastError = err;
      child.kill('SIGKILL');
      await exited;
      if (/address already in use/.test(output)) continue;
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    stops.push(stop);
    return {
      url,
      port,
      logs: () => output,
      stop,
      api: async <T>(path: string, params: Record<string, string> = {}): Promise<T> => {
        const qs = new URLSearchParams(params).toString();
        const r = await fetch(`${url}${path}${qs ? `?${qs}` : ''}`);
        const body = (await r.json()) as ApiReply<T>;
        if (body.status !== 'success' || body.data === undefined)
          throw new Error(`prometheus ${path}: ${body.errorType ?? r.status} ${body.error ?? ''}`);
        return body.data;
      },
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError instanceof Error ? lastError : new Error('prometheus did not start');
}

// ---------------------------------------------------------------------------------------------------
// Metric names

/** Words of PromQL that look like metric names but are operators, modifiers or literals. */
const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'atan2',
  'inf',
  'nan',
]);

/**
 * The metric names an expression selects. Not a full parser: label matchers (`{...}`), ranges and
 * subqueries (`[...]`), string literals and grouping lists (`by (...)`, `on (...)`, ...) are removed,
 * then every remaining identifier that is not a keyword and not a function or aggregation call is a
 * metric name. Grafana's `$variables` only occur inside the removed parts in our dashboard.
 */
export function metricNamesInPromQL(expr: string): string[] {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()/g)) {
    const name = m[1] ?? '';
    if (!PROMQL_KEYWORDS.has(name.toLowerCase())) names.add(name);
  }
  return [...names].sort();
}

/**
 * The series names a Prometheus text exposition declares (its `# TYPE` lines, so metrics without a
 * sample yet count too): histograms add `_bucket`, `_sum` and `_count`, summaries `_sum` and `_count`.
 */
export function exposedMetricNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type = ''] = m;
    out.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) out.add(name + s);
  }
  return out;
}
