import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBinance, fakeKlineValues } from '../helpers/fake-binance.js';
import { FakeBybit, tradedCandle } from '../helpers/fake-bybit.js';
import { FakeOkx } from '../helpers/fake-okx.js';
import { runCli } from '../helpers/cli.js';

const M = 60_000;
const T0 = Math.floor(Date.now() / M) * M - 2 * 1440 * M; // two days ago
let fake: FakeBinance;
let cfg: string;

beforeAll(async () => {
  fake = await FakeBinance.start({ now: Date.now });
  const dir = mkdtempSync(join(tmpdir(), 'mbhist-'));
  cfg = join(dir, 'c.yaml');
  // An embedded PGlite store of its own, and the fake's REST for history.
  writeFileSync(
    cfg,
    `data_dir: ${join(dir, 'state')}\nmarket_data:\n  max_history_calls_per_min: 600\n  sources:\n    binance:\n      rest_url: ${fake.restUrl}\n`,
  );
});

afterAll(async () => {
  await fake.close();
});

const env = { DATABASE_URL: '', CLICKHOUSE_URL: '' };

describe('marketbus history', () => {
  it('backfill writes the REST range tagged source=rest; export gives it back; gaps lists what is missing', async () => {
    const from = new Date(T0).toISOString();
    const to = new Date(T0 + 90 * M).toISOString();
    const b = await runCli(
      [
        '--config',
        cfg,
        'history',
        'backfill',
        '--instrument',
        'binance:spot:BTCUSDT',
        '--from',
        from,
        '--to',
        to,
      ],
      { env, timeoutMs: 60_000 },
    );
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toContain('backfill done: 90 candle(s) written');
    expect(fake.klineRequests.length).toBeGreaterThanOrEqual(1);

    const e = await runCli(
      [
        '--config',
        cfg,
        'history',
        'export',
        '--instrument',
        'binance:spot:BTCUSDT',
        '--from',
        from,
        '--to',
        to,
        '--format',
        'jsonl',
      ],
      { env },
    );
    expect(e.code, e.stderr).toBe(0);
    const rows = e.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(rows).toHaveLength(90);
    expect(rows.every((r) => r['source'] === 'rest')).toBe(true);
    expect(rows[0]).toMatchObject({
      instrument_key: 'binance:spot:BTCUSDT',
      ts_open: from,
      close: String(Number(fakeKlineValues('BTCUSDT', T0).c)),
    });

    const csv = await runCli(
      [
        '--config',
        cfg,
        'history',
        'export',
        '--instrument',
        'binance:spot:BTCUSDT',
        '--from',
        from,
        '--to',
        to,
      ],
      { env },
    );
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      'market_id,symbol,instrument_key,ts_open,ts_close,open,high,low,close,volume_base,volume_quote,source',
    );
    expect(lines).toHaveLength(91);

    const g = await runCli(
      ['--config', cfg, 'history', 'gaps', '--instrument', 'binance:spot:BTCUSDT', '--json'],
      { env },
    );
    expect(g.code, g.stderr).toBe(0);
    const gaps = g.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { from: string; minutes: number });
    expect(gaps).toHaveLength(1); // from the end of the backfill to now
    expect(gaps[0]?.from).toBe(to);
    expect(gaps[0]?.minutes).toBeGreaterThan(2 * 1440 - 100);
  });

  it('bad input gets one clear line and exit code 2', async () => {
    const hostile = await runCli(
      ['--config', cfg, 'history', 'export', '--instrument', 'binance:spot:BTC*', '--from', '0', '--to', '1'],
      { env },
    );
    expect(hostile.code).toBe(2);
    expect(hostile.stderr).toMatch(/invalid instrument key/);
    const backwards = await runCli(
      [
        '--config',
        cfg,
        'history',
        'export',
        '--instrument',
        'binance:spot:BTCUSDT',
        '--from',
        '2026-02-10',
        '--to',
        '2026-02-09',
      ],
      { env },
    );
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toMatch(/--from .* must be before --to .*INVALID_RANGE/);
    const unknown = await runCli(
      ['--config', cfg, 'history', 'gaps', '--instrument', 'binance:spot:ETHUSDT'],
      { env },
    );
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no stored candles; stored: binance:spot:BTCUSDT/);
    const badTime = await runCli(
      [
        '--config',
        cfg,
        'history',
        'export',
        '--instrument',
        'binance:spot:BTCUSDT',
        '--from',
        'soon',
        '--to',
        '1',
      ],
      { env },
    );
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('not a time: soon');
    const notBinance = await runCli(
      [
        '--config',
        cfg,
        'history',
        'backfill',
        '--instrument',
        'sim:spot:BTCUSDT',
        '--from',
        '0',
        '--to',
        '60000',
      ],
      { env },
    );
    expect(notBinance.code).toBe(2);
    expect(notBinance.stderr).toContain('REST history');
  });

  it('backfill works for every venue: bybit and okx keys read their venue REST history, market_id from the config', async () => {
    const bybit = await FakeBybit.start({ now: Date.now });
    const okx = await FakeOkx.start({ now: Date.now, listed: ['okx:spot:BTC-USDT'] });
    try {
      const dir = mkdtempSync(join(tmpdir(), 'mbhist-'));
      const venues = join(dir, 'venues.yaml');
      writeFileSync(
        venues,
        [
          `data_dir: ${join(dir, 'state')}`,
          'market_data:',
          '  max_history_calls_per_min: 600',
          '  instruments: [{ key: okx:spot:BTC-USDT, market_id: 9 }, bybit:linear:BTCUSDT]',
          '  sources:',
          `    bybit: { rest_url: ${bybit.restUrl} }`,
          `    okx: { rest_url: ${okx.restUrl} }`,
          '',
        ].join('\n'),
      );
      const from = T0;
      const to = T0 + 30 * M;
      const filled = async (key: string): Promise<Record<string, string>[]> => {
        const range = ['--from', String(from), '--to', String(to)];
        const b = await runCli(['--config', venues, 'history', 'backfill', '--instrument', key, ...range], {
          env,
          timeoutMs: 60_000,
        });
        expect(b.code, b.stderr).toBe(0);
        expect(b.stdout).toContain('backfill done: 30 candle(s) written');
        const e = await runCli(
          ['--config', venues, 'history', 'export', '--instrument', key, ...range, '--format', 'jsonl'],
          { env },
        );
        expect(e.code, e.stderr).toBe(0);
        return e.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, string>);
      };
      const b = await filled('bybit:linear:BTCUSDT');
      expect(b).toHaveLength(30);
      expect(b[0]).toMatchObject({ instrument_key: 'bybit:linear:BTCUSDT', source: 'rest', market_id: '0' });
      expect(Number(b[0]?.['close'])).toBe(Number(tradedCandle('linear', 'BTCUSDT', T0).close));
      expect(bybit.restRequests.some((r) => r.path === '/v5/market/kline')).toBe(true);

      const o = await filled('okx:spot:BTC-USDT');
      expect(o).toHaveLength(30);
      expect(o[0]).toMatchObject({ instrument_key: 'okx:spot:BTC-USDT', source: 'rest', market_id: '9' });
      expect(Number(o[0]?.['close'])).toBe(okx.canonical('okx:spot:BTC-USDT', T0)?.close);
    } finally {
      await bybit.close();
      await okx.close();
    }
  }, 240_000);
});
