import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  accessSync,
  chmodSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { RedisServerNotFoundError, RedisServerStartError } from './errors.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { sleep } from '../util/sleep.js';
import { isProcessAlive } from '../util/process.js';

/** Options of a redis-server child process. */
export interface RedisServerOptions {
  /**
   * TCP port on 127.0.0.1.
   * @defaultValue none (a free port chosen at start)
   */
  readonly port?: number;
  /**
   * Data directory (AOF, RDB, pid and log files).
   * @defaultValue none (a new temporary directory, removed by `dispose()`)
   */
  readonly dir?: string;
  /**
   * `aof` keeps every write (appendonly yes, fsync everysec); `none` keeps nothing across restarts.
   * @defaultValue `aof`
   */
  readonly persistence?: 'aof' | 'none';
  /**
   * Executable to run, a path or a name looked up in PATH.
   * @defaultValue `redis-server`
   */
  readonly binary?: string | undefined;
  /**
   * How long to wait for the server to answer PING, ms.
   * @defaultValue 10000
   */
  readonly startTimeoutMs?: number;
  /**
   * Password of the default user (`requirepass`): a connection without it is refused. Letters and
   * digits only (it is sent in the readiness probe as is).
   * @defaultValue none (no password: the test servers)
   */
  readonly password?: string | undefined;
  /**
   * Extra `--name value` arguments passed through, e.g. `['--maxmemory', '64mb']`.
   * @defaultValue none
   */
  readonly extraArgs?: readonly string[];
}

/** The defaults of {@link RedisServerOptions}, applied by `RedisServer.start`. */
export const REDIS_SERVER_DEFAULTS = Object.freeze({
  persistence: 'aof',
  binary: 'redis-server',
  startTimeoutMs: 10_000,
} satisfies Partial<RedisServerOptions>);

/**
 * A real redis-server as a child process: the embedded default of `marketbus` and the server every
 * integration test runs against. It can be killed (SIGKILL) and restarted on the same port and
 * directory, which is how fault tests exercise restarts with and without persistence.
 */
export class RedisServer {
  private child: ChildProcess | undefined;
  private exitPromise: Promise<void> = Promise.resolve();
  private readonly ownsDir: boolean;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly opts: WithDefaults<RedisServerOptions, typeof REDIS_SERVER_DEFAULTS>,
    ownsDir: boolean,
  ) {
    this.ownsDir = ownsDir;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const opts = withDefaults(REDIS_SERVER_DEFAULTS, options);
    if (opts.password !== undefined && !/^[A-Za-z0-9]{16,}$/.test(opts.password))
      throw new RedisServerStartError('the redis-server password must be at least 16 letters or digits');
    const binary = opts.binary;
    if (!findExecutable(binary)) throw new RedisServerNotFoundError(binary);
    const ownsDir = opts.dir === undefined;
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'marketbus-redis-'));
    mkdirSync(dir, { recursive: true });
    await stopStaleServer(dir);
    // A free port can be taken between probing and binding: try a few times when we chose it.
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await freePort());
      const server = new RedisServer(port, dir, opts, ownsDir);
      try {
        await server.launch();
        return server;
      } catch (err) {
        if (opts.port !== undefined || attempt >= 5) throw err;
      }
    }
  }

  /** The URL without the password (for banners and logs). */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The URL with the password, for clients (the same as `url` without one). */
  get authUrl(): string {
    const pw = this.opts.password;
    return pw ? `redis://:${pw}@127.0.0.1:${this.port}` : this.url;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves when the current process exits (at once when none runs); a restart makes a new one. */
  get exited(): Promise<void> {
    return this.exitPromise;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Kill the process without letting it save anything (a crash), and wait until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child?.kill(signal);
    await this.exitPromise;
  }

  /** Stop gracefully (SIGTERM: redis-server flushes its AOF), waiting at most 5 s before SIGKILL. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGTERM');
    const killer = setTimeout(() => this.child?.kill('SIGKILL'), 5000);
    await this.exitPromise;
    clearTimeout(killer);
  }

  /** Start again on the same port and directory (after `kill()` or `stop()`). */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** Stop, and remove the data directory if it was a temporary one made by `start()`. Idempotent. */
  async dispose(): Promise<void> {
    await this.stop();
    live.delete(this);
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * The password goes in a config file (mode 0600) read as the first argument, not on the command
   * line, where any local user would see it in the process list.
   */
  private authConfig(): string[] {
    const pw = this.opts.password;
    if (!pw) return [];
    const file = join(this.dir, 'auth.conf');
    writeFileSync(file, `requirepass ${pw}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    return [file];
  }

  private async launch(): Promise<void> {
    const persistence = this.opts.persistence;
    const args = [
      ...this.authConfig(),
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--pidfile',
      join(this.dir, 'redis.pid'),
      '--logfile',
      join(this.dir, 'redis.log'),
      '--save',
      '',
      '--appendonly',
      persistence === 'aof' ? 'yes' : 'no',
      '--appendfsync',
      'everysec',
      '--daemonize',
      'no',
      ...(this.opts.extraArgs ?? []),
    ];
    // Its own process group: a Ctrl+C at the terminal reaches marketbus, which stops the server last,
    // after everything that uses it has flushed.
    const child = spawn(this.opts.binary, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    this.child = child;
    this.exitPromise = once(child, 'exit').then(() => undefined);
    watchExit(this);
    const deadline = Date.now() + this.opts.startTimeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) {
        const log = readTail(join(this.dir, 'redis.log'));
        throw new RedisServerStartError(
          `redis-server exited at start on port ${this.port}: ${stderr || log}`,
        );
      }
      if (await ping(this.port, this.opts.password)) return;
      await sleep(25);
    }
    child.kill('SIGKILL');
    throw new RedisServerStartError(`redis-server did not answer PING on port ${this.port} in time`);
  }
}

/** Servers to kill if this process exits without stopping them; one 'exit' listener for all. */
const live = new Set<RedisServer>();
let exitHooked = false;

function watchExit(server: RedisServer): void {
  live.add(server);
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const s of live) {
      const pid = s.pid;
      if (!s.running || pid === undefined) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** Ask the OS for a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  srv.close();
  await once(srv, 'close');
  if (addr === null || typeof addr === 'string') throw new RedisServerStartError('could not get a free port');
  return addr.port;
}

/**
 * One PING over a raw socket, after AUTH when there is a password: true on +PONG (a server still
 * loading its AOF answers -LOADING).
 */
function ping(port: number, password: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    const lines = password ? 2 : 1;
    sock.on('connect', () => sock.write(password ? `AUTH ${password}\r\nPING\r\n` : 'PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      const replies = buf.split('\r\n');
      if (replies.length > lines) done(replies[lines - 1] === '+PONG');
    });
  });
}

export function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'].map((d) =>
        join(d, name),
      );
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** A previous run killed hard can leave its redis-server behind on our data directory: stop it. */
async function stopStaleServer(dir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, 'redis.pid'), 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes('redis-server')) return;
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // not running any more
  }
  // Wait until it has let go of its AOF before a new server reads it.
  for (let i = 0; i < 200 && isProcessAlive(pid); i++) await sleep(25);
}

function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}
