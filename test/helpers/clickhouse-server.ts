/**
 * A private clickhouse-server child process for integration tests (modelled on src/bus/redis-server.ts):
 * free HTTP and TCP ports on 127.0.0.1, a temporary directory holding the config, users, data, tmp
 * and logs, start in well under a second, SIGKILL/restart, and removal of everything after.
 *
 * The config is written for Debian's clickhouse-server 18.16 (root element `<yandex>`, which current
 * releases still accept). Only the HTTP and native TCP ports are opened: no interserver, MySQL,
 * PostgreSQL, gRPC or HTTPS port is configured, so none is listened on; no query log, no ZooKeeper.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { findExecutable, freePort } from '../../src/bus/redis-server.js';

export const CLICKHOUSE_INSTALL = 'apt-get install -y clickhouse-server';

export interface ClickHouseServerOptions {
  /** Executable. Default: `CLICKHOUSE_SERVER_BIN` or `clickhouse-server` (PATH, /usr/sbin). */
  readonly binary?: string;
  /** How long to wait for `GET /ping` to answer `Ok.`, ms. Default 20000. */
  readonly startTimeoutMs?: number;
}

export class ClickHouseServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Wall time of the last start until the first `Ok.` from /ping, ms. */
  startMs = 0;
  private readonly onProcessExit = (): void => {
    this.child?.kill('SIGKILL');
  };

  private constructor(
    readonly httpPort: number,
    readonly tcpPort: number,
    readonly dir: string,
    private readonly binary: string,
    private readonly startTimeoutMs: number,
  ) {}

  static async start(opts: ClickHouseServerOptions = {}): Promise<ClickHouseServer> {
    const name = opts.binary ?? process.env['CLICKHOUSE_SERVER_BIN'] ?? 'clickhouse-server';
    const binary = findExecutable(name);
    if (binary === undefined) {
      throw new Error(
        `${name} was not found on PATH or in /usr/sbin. Install it with: sudo ${CLICKHOUSE_INSTALL} ` +
          `(Debian ships 18.16; any newer clickhouse-server works too, or set CLICKHOUSE_SERVER_BIN)`,
      );
    }
    // A free port can be taken between probing and binding: try a few times.
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'marketbus-clickhouse-'));
      const server = new ClickHouseServer(
        await freePort(),
        await freePort(),
        dir,
        binary,
        opts.startTimeoutMs ?? 20_000,
      );
      try {
        server.writeConfig();
        await server.launch();
        return server;
      } catch (err) {
        await server.dispose();
        if (attempt >= 3) throw err;
      }
    }
  }

  /** `CLICKHOUSE_URL` of this server. */
  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Run one statement over HTTP (test-side checks); returns the body, throws on a non-200 answer. */
  async query(sql: string): Promise<string> {
    const res = await fetch(`${this.url}/`, { method: 'POST', body: sql });
    const body = await res.text();
    if (!res.ok) throw new Error(`clickhouse ${res.status}: ${body.trim()}`);
    return body;
  }

  /** Kill hard (a crash) and wait until the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** Start again on the same ports and data directory. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Stop (SIGTERM, SIGKILL after 5 s) and remove the directory. Idempotent. */
  async dispose(): Promise<void> {
    if (this.running) {
      this.child?.kill('SIGTERM');
      const killer = setTimeout(() => this.child?.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(killer);
    }
    process.removeListener('exit', this.onProcessExit);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private writeConfig(): void {
    for (const d of ['data', 'tmp', 'user_files', 'format_schemas', 'log']) mkdirSync(join(this.dir, d));
    const dir = this.dir.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
    writeFileSync(
      join(this.dir, 'config.xml'),
      `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/log/server.log</log>
    <errorlog>${dir}/log/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${this.httpPort}</http_port>
  <tcp_port>${this.tcpPort}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
`,
    );
    writeFileSync(
      join(this.dir, 'users.xml'),
      `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
`,
    );
  }

  private async launch(): Promise<void> {
    const started = Date.now();
    const child = spawn(this.binary, [`--config-file=${join(this.dir, 'config.xml')}`], {
      cwd: this.dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    this.child = child;
    this.exited = once(child, 'exit').then(() => undefined);
    process.on('exit', this.onProcessExit);
    const deadline = started + this.startTimeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`clickhouse-server exited at start: ${stderr.trim()}\n${this.logTail()}`);
      }
      if (await this.ping()) {
        this.startMs = Date.now() - started;
        return;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    await this.exited;
    throw new Error(
      `clickhouse-server did not answer /ping on port ${this.httpPort} in time\n${this.logTail()}`,
    );
  }

  private async ping(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/ping`, { signal: AbortSignal.timeout(1000) });
      return res.ok && (await res.text()).trim() === 'Ok.';
    } catch {
      return false;
    }
  }

  private logTail(): string {
    try {
      return readFileSync(join(this.dir, 'log', 'server.err.log'), 'utf8')
        .split('\n')
        .slice(-10)
        .join('\n');
    } catch {
      return '';
    }
  }
}

const servers: ClickHouseServer[] = [];

afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.dispose()));
});

/** A private clickhouse-server for this test file, stopped and removed after it. */
export async function startClickHouse(opts: ClickHouseServerOptions = {}): Promise<ClickHouseServer> {
  const s = await ClickHouseServer.start(opts);
  servers.push(s);
  return s;
}
