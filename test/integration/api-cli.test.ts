/**
 * `marketbus api` as a command: it serves on a free port with `--port 0`, answers /readyz, stops on
 * SIGTERM with exit code 0; `--dev-login` prints a one-time sign-in link; in production it refuses to
 * start without its secrets or with `--dev-login`, naming the key (and so does `marketbus up`, before it
 * starts anything).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOT_TOKEN } from '../helpers/api.js';
import { runCli } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import { startRedis, waitFor, type TestRedis } from '../helpers/redis.js';

let server: TestRedis;
let dbUrl: string;

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  const pg = await startPostgres();
  dbUrl = (await pg.createDatabase()) ?? pg.url;
});

describe('marketbus api', () => {
  it('serves on a free port, is ready, prints the --dev-login link, and stops on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'api', '--port', '0', '--redis', server.url, '--dev-login'],
      {
        env: {
          ...process.env,
          REDIS_URL: '',
          DATABASE_URL: dbUrl,
          TELEGRAM_BOT_TOKEN: BOT_TOKEN,
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor(() => /marketbus api on http:\/\/127\.0\.0\.1:\d+/.test(stderr), 30_000, 'api up');
      const url = /marketbus api on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1] ?? '';
      await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 10_000, 'ready');
      expect((await fetch(`${url}/auth/current-user`)).status).toBe(401); // nobody without a session
      const link = /development sign-in: open (http:\/\/\S+)/.exec(stderr)?.[1] ?? '';
      expect(link.startsWith(`${url}/auth/dev?token=`)).toBe(true);
      expect((await fetch(link, { redirect: 'manual' })).status).toBe(303);
      expect((await fetch(link, { redirect: 'manual' })).status).toBe(401); // once
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('production without TELEGRAM_BOT_TOKEN or SESSION_SECRET: exit 2, naming the key', async () => {
    const noToken = await runCli(['api', '--port', '0', '--redis', server.url], {
      env: { NODE_ENV: 'production', TELEGRAM_BOT_TOKEN: '', SESSION_SECRET: 's'.repeat(40) },
    });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/TELEGRAM_BOT_TOKEN.*\[CONFIG_INVALID\]/);
    const noSecret = await runCli(['up', '--port', '0', '--redis', server.url], {
      env: { NODE_ENV: 'production', TELEGRAM_BOT_TOKEN: BOT_TOKEN, SESSION_SECRET: '' },
    });
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toMatch(/SESSION_SECRET.*\[CONFIG_INVALID\]/);
    const prod = { NODE_ENV: 'production', TELEGRAM_BOT_TOKEN: BOT_TOKEN, SESSION_SECRET: 's'.repeat(40) };
    const devLogin = await runCli(['api', '--port', '0', '--redis', server.url, '--dev-login'], {
      env: prod,
    });
    expect(devLogin.code).toBe(2);
    expect(devLogin.stderr).toMatch(/--dev-login.*\[CONFIG_INVALID\]/);
  });

  it('rejects a bad --port', async () => {
    const r = await runCli(['api', '--port', '70000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port/);
  });
});
