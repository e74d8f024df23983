/**
 * The npm package carries the dashboard: `npm pack` of the built checkout, the tarball installed into
 * an empty folder (from npm's cache where it can), `npx marketbus up` run there, and the page loaded in
 * Chromium: 200, every asset it asks for loads, no console error and no failed request.
 *
 * `npm test` builds first (scripts/setup.mjs: tsc, then scripts/copy-public.mjs), so the pack skips
 * its prepack build.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/bus/redis-server.js';
import { launchChromium } from '../helpers/chromium.js';
import { waitFor } from '../helpers/redis.js';

const NPM = 'npm';
let dir = '';
let up: ChildProcess | undefined;
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  if (up?.pid !== undefined && up.exitCode === null) {
    const exited = new Promise((r) => up?.once('exit', r));
    // npm exec and the marketbus it started: the whole process group, as Ctrl+C would.
    process.kill(-up.pid, 'SIGINT');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Files in the tarball, from `npm pack --dry-run --json`. */
function packedFiles(): string[] {
  const out = execFileSync(NPM, ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' });
  const [info] = JSON.parse(out) as { files: { path: string }[] }[];
  return (info?.files ?? []).map((f) => f.path);
}

describe('the npm package', () => {
  it('lists every dashboard file of src/api/public under dist/api/public', () => {
    const files = packedFiles();
    const page = readdirSync(resolve('src/api/public'));
    expect(page.length).toBeGreaterThan(0);
    for (const f of page) expect(files, f).toContain(`dist/api/public/${f}`);
    expect(files.some((f) => f.startsWith('src/'))).toBe(false);
  });

  it('installed into an empty folder, `npx marketbus up` serves the dashboard: 200, assets load, no console error', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mbpkg-'));
    execFileSync(NPM, ['pack', '--ignore-scripts', '--pack-destination', dir], { stdio: 'ignore' });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack made no tarball');
    const app = join(dir, 'app');
    execFileSync('mkdir', [app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    execFileSync(
      NPM,
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tarball)],
      { cwd: app, stdio: 'ignore' },
    );
    // Not the checkout's files: the installed package has no src/.
    expect(existsSync(join(app, 'node_modules/marketbus/src'))).toBe(false);

    const port = await freePort();
    up = spawn(
      NPM,
      ['exec', '--no', '--', 'marketbus', 'up', '--port', String(port), '--instruments', 'sim:spot:BTCUSDT'],
      {
        cwd: app,
        env: {
          ...process.env,
          REDIS_URL: '',
          DATABASE_URL: '',
          CLICKHOUSE_URL: '',
          TELEGRAM_BOT_TOKEN: '',
          NODE_ENV: 'development',
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
        detached: true,
      },
    );
    let err = '';
    up.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(() => /marketbus is up: /.test(err) || up?.exitCode !== null, 90_000, 'marketbus up');
    const devLogin = /development sign-in: open (http:\/\/\S+)/.exec(err)?.[1];
    if (!devLogin) throw new Error(`no development sign-in link printed:\n${err.slice(-2000)}`);

    browser = await launchChromium();
    const page = await (await browser.newContext()).newPage();
    const consoleErrors: string[] = [];
    const failed: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText ?? ''}`));
    const assets: { url: string; status: number }[] = [];
    page.on('response', (r) => assets.push({ url: r.url(), status: r.status() }));

    const first = await page.goto(devLogin);
    expect(first?.ok()).toBe(true);
    expect(new URL(page.url()).pathname).toBe('/');
    await page.waitForSelector('#user:text("signed in as local")', { timeout: 15_000 });
    await page.waitForSelector('#feed-state[data-state="STREAM"]', { timeout: 30_000 });

    const paths = assets.map((a) => new URL(a.url).pathname);
    for (const p of ['/', '/app.js', '/style.css', '/vendor/lightweight-charts.js', '/icon.svg'])
      expect(paths, p).toContain(p);
    expect(assets.filter((a) => a.status >= 400)).toEqual([]);
    expect(failed).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 240_000);
});
