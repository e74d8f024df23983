/**
 * `marketbus up` as a real process (the built CLI in dist/: `npx tsc -p tsconfig.json` first), on
 * embedded Redis and PGlite under a new directory (its cwd), simulated feed. Killed and its directory
 * removed after the file's tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';
import { waitFor } from './redis.js';

export const CLI = resolve('dist/cli/main.js');
export const UP_INSTRUMENT = 'sim:spot:BTCUSDT';

const dirs: string[] = [];
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export interface Up {
  readonly child: ChildProcess;
  /** The working directory (`.marketbus/` lives under it). */
  readonly dir: string;
  readonly exit: Promise<number | null>;
  /** Everything written to stderr so far (logs and the start banner). */
  stderr(): string;
  /** Everything written to stdout so far. */
  stdout(): string;
}

export interface SpawnUpOptions {
  /** Extra environment (over a development environment with no Redis, database or bot configured). */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory; a new temporary one by default. */
  readonly dir?: string;
}

/** Start `marketbus up --source simulated --instruments sim:spot:BTCUSDT <args>`. */
export function spawnUp(args: readonly string[], o: SpawnUpOptions = {}): Up {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'marketbus-up-'));
  if (o.dir === undefined) dirs.push(dir);
  const child = spawn(
    process.execPath,
    [CLI, 'up', '--source', 'simulated', '--instruments', UP_INSTRUMENT, ...args],
    {
      cwd: dir,
      env: {
        ...process.env,
        REDIS_URL: '',
        DATABASE_URL: '',
        CLICKHOUSE_URL: '',
        NODE_ENV: 'development',
        TELEGRAM_BOT_TOKEN: '',
        LOG_LEVEL: 'info',
        ...o.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let err = '';
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, dir, exit, stderr: () => err, stdout: () => out };
}

export const running = (up: Up): boolean => up.child.exitCode === null && up.child.signalCode === null;

/** The password file of the embedded redis-server of `marketbus up` in `dir`. */
export function embeddedPasswordFile(dir: string): string {
  return join(dir, '.marketbus', 'redis', 'password');
}

/**
 * Wait for the start banner; the API's URL, the embedded Redis URL it names with the password (the
 * banner shows none) read from the password file in the data directory, as an operator would, and the
 * one-time development sign-in URL when it printed one.
 */
export async function untilUp(
  up: Up,
  timeoutMs = 120_000,
): Promise<{ redisUrl: string; api: string; devLogin: string | null }> {
  await waitFor(() => /marketbus is up: /.test(up.stderr()) || !running(up), timeoutMs, 'marketbus up');
  const m = /Redis (redis:\/\/\S*127\.0\.0\.1:\d+).* api (http:\/\/127\.0\.0\.1:\d+)/.exec(up.stderr());
  if (!m?.[1] || !m[2]) throw new Error(`marketbus up did not start:\n${up.stderr().slice(-3000)}`);
  const dev = /development sign-in: open (http:\/\/\S+)/.exec(up.stderr());
  const devLogin = dev?.[1] ?? null;
  const file = embeddedPasswordFile(up.dir);
  if (!existsSync(file)) return { redisUrl: m[1], api: m[2], devLogin };
  const url = new URL(m[1]);
  url.password = readFileSync(file, 'utf8').trim();
  return { redisUrl: url.toString().replace(/\/$/, ''), api: m[2], devLogin };
}
