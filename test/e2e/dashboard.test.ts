/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against `marketbus up`
 * on loopback: the browser signs in by opening the one-time development sign-in link `up` prints (a
 * Secure `__Host-` cookie over http://127.0.0.1), then the page loads, prices and the candle chart
 * update live, a strategy is created and run from the page, and its events appear, all under the
 * Content-Security-Policy without a violation.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/bus/redis-server.js';
import { launchChromium, watchedPage } from '../helpers/chromium.js';
import { connect, startRedis, waitFor } from '../helpers/redis.js';

let up: ChildProcess;
let browser: Browser;
let context: BrowserContext;
let base: string;
let client: Awaited<ReturnType<typeof connect>>;

beforeAll(async () => {
  const redis = await startRedis({ persistence: 'none' });
  client = await connect(redis);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mbui-'));
  const cfg = join(dir, 'c.yaml');
  writeFileSync(cfg, `data_dir: ${join(dir, 'state')}\n`);
  up = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      '--config',
      cfg,
      '--redis',
      redis.url,
      'up',
      '--port',
      String(port),
      '--speed',
      '600',
      '--instruments',
      'sim:spot:BTCUSDT,sim:spot:ETHUSDT',
    ],
    {
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
    },
  );
  let err = '';
  up.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  base = `http://127.0.0.1:${port}`;
  await waitFor(
    async () =>
      await fetch(`${base}/readyz`)
        .then((r) => r.ok)
        .catch(() => false),
    60_000,
    `marketbus up ready (${err.slice(-500)})`,
  );
  await waitFor(() => /marketbus is up: /.test(err), 30_000, 'the start banner');
  const devLogin = /development sign-in: open (http:\/\/\S+)/.exec(err)?.[1];
  if (!devLogin) throw new Error(`no development sign-in link printed:\n${err.slice(-2000)}`);
  browser = await launchChromium();
  // One browser profile for the tests: the link works once.
  context = await browser.newContext();
  const signIn = await context.newPage();
  await signIn.goto(devLogin);
  expect(new URL(signIn.url()).pathname).toBe('/');
  await signIn.waitForSelector('#user:text("signed in as local")', { timeout: 10_000 });
  await signIn.close();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  up?.kill('SIGINT');
});

describe('dashboard', () => {
  it('loads; prices and the chart update live; a strategy is created and run from the page and its events appear', async () => {
    const { page, errors, violations } = await watchedPage(context);
    const loaded = await page.goto(base);
    expect(loaded?.headers()['content-security-policy']).toContain("default-src 'self'");
    await expect(page.title()).resolves.toBe('marketbus');

    // the feed's state and live prices
    await page.waitForSelector('#feed-state[data-state="STREAM"]', { timeout: 20_000 });
    await page.waitForSelector('#prices tr[data-key="sim:spot:BTCUSDT"] td.mid:not(:text("–"))', {
      timeout: 20_000,
    });
    const midCell = '#prices tr[data-key="sim:spot:BTCUSDT"] td.mid';
    const mid1 = await page.textContent(midCell);
    await waitFor(async () => (await page.textContent(midCell)) !== mid1, 20_000, 'the mid price to change');

    // the candle chart fills and keeps updating
    const candles = async (): Promise<number> =>
      Number((await page.getAttribute('#chart', 'data-candles')) ?? 0);
    await waitFor(async () => (await candles()) >= 3, 20_000, 'three candles on the chart');
    const n1 = await candles();
    await waitFor(async () => (await candles()) > n1, 20_000, 'a new candle on the chart');
    expect(await page.locator('#chart canvas').count()).toBeGreaterThan(0);

    // create and run a strategy from the page
    await page.fill('input[name="signal_template"]', 'MA(3,8)');
    await page.click('#create-strategy button[type="submit"]');
    await page.waitForSelector('#strategies tbody tr button[data-action="run"]', { timeout: 10_000 });
    await page.click('#strategies tbody tr button[data-action="run"]');
    await page.waitForSelector('#events li[data-type="started"]', { timeout: 20_000 });
    await page.waitForSelector('#events li[data-type="signal"]', { timeout: 60_000 });
    await page.waitForSelector('#strategies tbody tr td.status:text("running")', { timeout: 10_000 });

    // a backtest of the strategy from the page: progress, then the equity curve
    await page.click('#strategies tbody tr button[data-action="backtest"]');
    await page.waitForSelector('#backtest-status[data-status="done"]', { timeout: 60_000 });
    await waitFor(
      async () => Number((await page.getAttribute('#equity', 'data-points')) ?? 0) > 0,
      10_000,
      'equity curve',
    );
    expect(await page.textContent('#backtest-summary')).toMatch(/pnl/i);

    // a bad template is refused with the field named
    await page.fill('input[name="signal_template"]', 'MA(8,3)');
    await page.click('#create-strategy button[type="submit"]');
    await page.waitForSelector('#create-error:not(:empty)', { timeout: 10_000 });

    // the streams table shows the candle streams and the runner's group
    await page.click('#refresh-streams');
    await page.waitForSelector('#streams td:text("md.candles.1m.sim:spot:BTCUSDT")', { timeout: 10_000 });

    await page.screenshot({ path: join(tmpdir(), 'marketbus-dashboard.png'), fullPage: true });
    expect(errors).toEqual([]);
    // Everything above (the chart library, the relay's WebSocket, the forms) runs under the CSP.
    expect(violations).toEqual([]);
  }, 180_000);

  it('renders a hostile strategy name as text: no markup is parsed, no script runs', async () => {
    const { page, errors } = await watchedPage(context);
    await page.goto(base);
    const hostile = '<img src=x onerror="window.__pwned = 1"><b id="injected">bold</b>';
    // Created from the page itself, as any signed-in user of the same origin could.
    const status = await page.evaluate(async (name) => {
      const r = await fetch('/strategies', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          name,
          instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
          instrument_key: 'sim:spot:BTCUSDT',
          market_type: 'spot',
          timeframe: '1m',
          indicators: [{ name: 'MA', params: { fast: 3, slow: 8 } }],
          signal_template: 'MA(3,8)',
        }),
      });
      return r.status;
    }, hostile);
    expect(status).toBe(201);
    await page.reload();
    await page.waitForSelector('#strategies tbody tr td', { timeout: 10_000 });
    const names = await page.locator('#strategies tbody tr td:first-child').allTextContents();
    expect(names).toContain(hostile);
    expect(await page.locator('#strategies img, #injected').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(errors).toEqual([]);
  }, 60_000);

  it('lists the instruments grouped by venue, each group headed by its md.status.<venue> state', async () => {
    const { page, errors, violations } = await watchedPage(context);
    await page.goto(base);
    await page.waitForSelector('#prices tr.venue[data-venue="simulated"][data-state="STREAM"]', {
      timeout: 20_000,
    });
    // A second venue's status as its source writes it (docs/contracts.md §8): one instrument refused.
    const reason = '<b id="injected">okx does not list BTC-NOPE</b>';
    await waitFor(
      async () => {
        await client.xAdd('md.status.okx', '*', {
          schema_version: '1',
          source: 'okx',
          state: 'DISCONNECTED',
          state_since: new Date().toISOString(),
          reason: 'socket closed',
          instruments: JSON.stringify({
            'okx:spot:BTC-NOPE': { state: 'stopped', bid: null, ask: null, mid: null, reason },
          }),
        });
        return (await page.locator('#prices tr.venue[data-venue="okx"]').count()) === 1;
      },
      20_000,
      'the okx group on the page',
    );
    const okxHead = page.locator('#prices tr.venue[data-venue="okx"]');
    expect(await okxHead.getAttribute('data-state')).toBe('DISCONNECTED');
    expect(await okxHead.textContent()).toMatch(/okx \(1\).*DISCONNECTED/);
    const refused = page.locator('#prices tr[data-key="okx:spot:BTC-NOPE"]');
    expect(await refused.getAttribute('data-venue')).toBe('okx');
    expect(await refused.getAttribute('data-state')).toBe('stopped');
    expect(await refused.getAttribute('title')).toBe(reason);
    expect(await page.locator('#injected').count()).toBe(0);
    // The simulated group keeps its own state and instruments; the header shows the worst of both.
    const simRows = page.locator('#prices tr[data-venue="simulated"]:not(.venue)');
    expect(await simRows.count()).toBe(2);
    expect(await page.getAttribute('#feed-state', 'data-state')).toBe('DISCONNECTED');
    // Groups in venue order, each followed by its own instruments.
    const rows = await page.locator('#prices tbody tr').all();
    const order = await Promise.all(rows.map((r) => r.getAttribute('data-venue')));
    expect(order).toEqual(['okx', 'okx', 'simulated', 'simulated', 'simulated']);
    expect(errors).toEqual([]);
    expect(violations).toEqual([]);
  }, 60_000);
});
