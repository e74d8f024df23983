/**
 * Unit tests (no servers) of the command registry, the wire format of commands and replies, and the
 * backtest driver and result over an in-memory candle store.
 */
import { describe, expect, it } from 'vitest';
import { describeStream } from '../../src/contracts/catalog.js';
import { makeEnvelope } from '../../src/bus/codec.js';
import { InvalidKeyError, InvalidRangeError } from '../../src/util/errors.js';
import { DecodeError } from '../../src/bus/errors.js';
import type { CandleStore } from '../../src/history/store.js';
import { runBacktest } from '../../src/backtest/driver.js';
import { BacktestAccumulator } from '../../src/backtest/result.js';
import { backtestIdForCommand } from '../../src/backtest/backtests.js';
import { commandSpec, defineService, serviceStreams } from '../../src/commands/registry.js';
import { onceKey } from '../../src/commands/reply-once.js';
import { SERVICES, isServiceName } from '../../src/commands/services.js';
import { decodeCommand, decodeReply, encodeCommand, encodeReply } from '../../src/commands/wire.js';
import type { Candle } from '../../src/contracts/candle.js';
import { createStrategy } from '../../src/strategy/engine.js';
import { parseStrategySpec } from '../../src/strategy/spec.js';

const M = 60_000;
const KEY = 'sim:spot:BTCUSDT';

describe('command registry', () => {
  it('lists the services and the command types each accepts; names come from the catalog', () => {
    expect(Object.keys(SERVICES)).toEqual(['strategy', 'backtesting']);
    expect(Object.keys(SERVICES.strategy.commands)).toEqual(['strategy.run', 'strategy.stop']);
    expect(Object.keys(SERVICES.backtesting.commands)).toEqual([
      'backtest.run',
      'backtest.cancel',
      'backtest.get',
    ]);
    expect(serviceStreams('backtesting')).toEqual({
      commands: 'mgmt:backtesting:commands',
      results: 'backtesting:mgmt:results',
      status: 'backtesting:status',
    });
    const s = serviceStreams(SERVICES.strategy);
    expect(describeStream(s.commands)?.kind).toBe('service-commands');
    expect(describeStream(s.results)?.kind).toBe('service-results');
    expect(describeStream(s.status)?.kind).toBe('service-status');
    expect(isServiceName('backtesting')).toBe(true);
    expect(isServiceName('toString')).toBe(false);
    expect(commandSpec(SERVICES.backtesting, 'backtest.run')).toBeDefined();
    expect(commandSpec(SERVICES.backtesting, 'constructor')).toBeUndefined();
  });

  it('refuses a service name that cannot be part of a stream name', () => {
    expect(() => defineService('Bad Name', 'x', {})).toThrow(InvalidKeyError);
    expect(() => defineService('a:b', 'x', {})).toThrow(InvalidKeyError);
  });

  it('validates payloads and results by schema', () => {
    const run = SERVICES.backtesting.commands['backtest.run'].payload;
    const ok = { strategy_id: 's1', from: '2026-01-01T00:00:00Z', to: '2026-01-31T00:00:00.000+00:00' };
    expect(run.safeParse(ok).success).toBe(true);
    expect(run.safeParse({ ...ok, from: 'yesterday' }).success).toBe(false);
    expect(run.safeParse({ ...ok, extra: 1 }).success).toBe(false);
    expect(run.safeParse({ from: ok.from, to: ok.to }).success).toBe(false);
    expect(run.safeParse({ ...ok, strategy_id: '' }).success).toBe(false);
    const get = SERVICES.backtesting.commands['backtest.get'].payload;
    expect(get.parse({ backtest_id: 'b' })).toEqual({ backtest_id: 'b', include_result: true });
    const stratRun = SERVICES.strategy.commands['strategy.run'];
    expect(stratRun.payload.safeParse({ strategy_id: 's', run_id: 'r' }).success).toBe(true);
    expect(stratRun.payload.safeParse({ strategy_id: 's', x: 1 }).success).toBe(false);
    expect(
      stratRun.result.safeParse({ ok: true, strategy_id: 's', run_id: null, status: 'running' }).success,
    ).toBe(true);
    const cancelResult = SERVICES.backtesting.commands['backtest.cancel'].result;
    expect(
      cancelResult.safeParse({ backtest_id: 'b', status: 'paused', cancel_requested: true }).success,
    ).toBe(false);
  });
});

describe('command wire format', () => {
  const env = makeEnvelope(
    'backtest.get',
    'api',
    { backtest_id: 'b1' },
    { id: 'cmd-1', correlationId: 'corr-1' },
  );

  it('round-trips a command with its callback stream and deadline', () => {
    const fields = encodeCommand(env, 'api:mgmt:results', Date.UTC(2026, 0, 1));
    expect(fields).toMatchObject({
      schema_version: '1',
      type: 'backtest.get',
      id: 'cmd-1',
      correlation_id: 'corr-1',
      payload: '{"backtest_id":"b1"}',
      reply_to: 'api:mgmt:results',
      expires_at: '2026-01-01T00:00:00.000Z',
    });
    const back = decodeCommand(fields, 'backtesting:mgmt:results');
    expect(back.envelope).toEqual(env);
    expect(back.replyTo).toBe('api:mgmt:results');
    expect(back.expiresAt).toBe(Date.UTC(2026, 0, 1));
  });

  it('defaults the callback stream for commands written without one (the first strategy commands)', () => {
    const { reply_to: _r, expires_at: _e, ...legacy } = encodeCommand(env, 'x:mgmt:results', null);
    const back = decodeCommand(legacy, 'strategy:mgmt:results');
    expect(back.replyTo).toBe('strategy:mgmt:results');
    expect(back.expiresAt).toBeNull();
  });

  it('refuses callback streams that are not results streams, bad deadlines and bad envelopes', () => {
    const fields = encodeCommand(env, 'api:mgmt:results', null);
    for (const replyTo of ['md.candles.1m.sim:spot:BTCUSDT', 'mgmt:strategy:commands', 'anything', 'dlq:{x}'])
      expect(() => decodeCommand({ ...fields, reply_to: replyTo }, 'a:mgmt:results')).toThrow(DecodeError);
    expect(() => decodeCommand({ ...fields, expires_at: 'soon' }, 'a:mgmt:results')).toThrow(DecodeError);
    expect(() => decodeCommand({ ...fields, payload: '{' }, 'a:mgmt:results')).toThrow(/not JSON/);
    expect(() => decodeCommand({ ...fields, schema_version: '9' }, 'a:mgmt:results')).toThrow();
    expect(() => decodeCommand({ type: 'x' }, 'a:mgmt:results')).toThrow(DecodeError);
  });

  it('replies carry the command id and its correlation id; results and errors are told apart', () => {
    const r = decodeReply(encodeReply(env, 'result', 'backtester', { backtest: null }));
    expect(r).toMatchObject({ kind: 'result', commandId: 'cmd-1' });
    expect(r?.envelope).toMatchObject({
      type: 'backtest.get.result',
      correlationId: 'corr-1',
      source: 'backtester',
    });
    const e = decodeReply(encodeReply(env, 'error', 'backtester', { code: 'NOT_FOUND', message: 'no' }));
    expect(e).toMatchObject({
      kind: 'error',
      envelope: { type: 'backtest.get.error', payload: { code: 'NOT_FOUND' } },
    });
    // a command without a correlation id is answered with its own id as correlation (as before)
    const bare = makeEnvelope('strategy.run', 'api', { strategy_id: 's' }, { id: 'c2' });
    expect(encodeReply(bare, 'result', 'x', {})['correlation_id']).toBe('c2');
    expect(decodeReply({ nope: '1' })).toBeNull();
  });

  it('the once-record of a reply shares the callback stream slot; backtest ids derive from command ids', () => {
    expect(onceKey('backtesting:mgmt:results', 'c1')).toBe('once:{backtesting:mgmt:results}:c1');
    expect(backtestIdForCommand('c1')).toBe(backtestIdForCommand('c1'));
    expect(backtestIdForCommand('c1')).not.toBe(backtestIdForCommand('c2'));
    expect(backtestIdForCommand('c1')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
  });
});

function walk(from: number, n: number, seed = 3): Candle[] {
  let x = seed;
  let price = 100;
  const out: Candle[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    price *= 1 + (x / 2 ** 31 - 0.5) * 0.01;
    const t = from + i * M;
    out.push({
      instrumentKey: KEY,
      symbol: 'BTCUSDT',
      marketId: 1,
      timeframe: '1m',
      tsOpen: t,
      tsClose: t + M,
      open: price,
      high: price,
      low: price,
      close: price,
      volumeBase: 1,
      volumeQuote: null,
      origin: 'sim',
    });
  }
  return out;
}

function memoryStore(candles: readonly Candle[]): CandleStore & { reads: number } {
  const s = {
    kind: 'pglite' as const,
    reads: 0,
    migrate: () => Promise.resolve(),
    insert: () => Promise.resolve(),
    range: (k: string, f: number, t: number, l?: number) => {
      s.reads++;
      const r = candles.filter((c) => c.instrumentKey === k && c.tsOpen >= f && c.tsOpen < t);
      return Promise.resolve(l === undefined ? r : r.slice(0, l));
    },
    last: () => Promise.resolve([]),
    openTimes: () => Promise.resolve([]),
    bounds: () => Promise.resolve(null),
    instruments: () => Promise.resolve([KEY]),
    close: () => Promise.resolve(),
  };
  return s;
}

const emaSpec = parseStrategySpec({
  instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
  instrument_key: KEY,
  market_type: 'spot',
  timeframe: '1m',
  indicators: [{ name: 'EMA', params: { fast: 5, slow: 13 } }],
  signal_template: 'EMA(5,13)',
});

describe('backtest driver', () => {
  const T0 = Date.UTC(2026, 1, 1);
  const candles = walk(T0 - 100 * M, 3100);

  it('feeds the warm-up before `from` and the range, in pages, exactly like one plain pass of the engine', async () => {
    const engine = createStrategy(emaSpec);
    const plain: { ts: number; signal: string }[] = [];
    let equity = 0;
    for (const c of candles) {
      if (c.tsOpen < T0 - 13 * M) continue; // the live runner's warm-up: `slow` candles before the start
      const s = engine.onCandle(c);
      if (s && c.tsOpen >= T0) {
        if (s.signal) plain.push({ ts: s.tsOpen, signal: s.signal });
        equity = s.equity;
      }
    }
    for (const pageSize of [7, 1000, 100_000]) {
      const store = memoryStore(candles);
      const progress: number[] = [];
      const { result, stopped } = await runBacktest({
        store,
        spec: emaSpec,
        from: T0,
        to: T0 + 3000 * M,
        pageSize,
        progressEvery: 500,
        onProgress: (p) => void progress.push(p.processed),
      });
      expect(stopped).toBe(false);
      expect(result.candles).toMatchObject({ warmup: 13, processed: 3000 });
      expect(result.signals.map((s) => ({ ts: s.ts, signal: s.signal }))).toEqual(plain);
      expect(result.summary.final_equity).toBe(equity);
      expect(progress).toEqual([500, 1000, 1500, 2000, 2500, 3000]);
    }
  });

  it('stops between pages when asked, with the result of what ran', async () => {
    let asked = 0;
    const { result, stopped } = await runBacktest({
      store: memoryStore(candles),
      spec: emaSpec,
      from: T0,
      to: T0 + 3000 * M,
      pageSize: 500,
      shouldStop: () => ++asked >= 2,
    });
    expect(stopped).toBe(true);
    expect(result.complete).toBe(false);
    expect(result.candles.processed).toBe(1000 - 13); // two pages, the first with the warm-up
  });

  it('refuses an empty range', async () => {
    await expect(runBacktest({ store: memoryStore([]), spec: emaSpec, from: T0, to: T0 })).rejects.toThrow(
      InvalidRangeError,
    );
  });

  it('keeps the equity curve within 2000 points, the drawdown over every candle, the win rate over round trips', () => {
    const acc = new BacktestAccumulator(emaSpec);
    const engine = createStrategy(emaSpec);
    const many = walk(T0, 43_200, 11);
    let peak = emaSpec.params.initialEquity;
    let dd = 0;
    for (const c of many) {
      const s = engine.onCandle(c);
      if (!s) continue;
      acc.add(s);
      peak = Math.max(peak, s.equity);
      dd = Math.max(dd, peak - s.equity);
    }
    const r = acc.result({ from: T0, to: T0 + 43_200 * M }, true);
    expect(r.equity_curve.length).toBeLessThanOrEqual(2000);
    expect(r.equity_curve.length).toBeGreaterThan(1000);
    expect(r.equity_curve[0]?.ts).toBe(T0);
    expect(r.equity_curve[r.equity_curve.length - 1]?.ts).toBe(T0 + 43_199 * M);
    expect(r.summary.max_drawdown).toBe(dd);
    expect(r.summary.trades).toBe(r.trades.length);
    expect(r.summary.wins + r.summary.losses).toBe(r.trades.length);
    expect(r.summary.win_rate).toBe(r.summary.wins / r.trades.length);
    expect(r.summary.buy_signals + r.summary.sell_signals).toBe(r.signals.length);
    const realized = r.trades.reduce((a, t) => a + t.pnl, 0);
    expect(r.summary.realized_pnl).toBeCloseTo(realized, 6);
    expect(r.summary.pnl).toBeCloseTo(r.summary.realized_pnl + r.summary.unrealized_pnl, 6);
  });
});
