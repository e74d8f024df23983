import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/util/sleep.js';
import { ConfigError } from '../../src/util/errors.js';
import { createSimulatedSource, stableMarketId } from '../../src/marketdata/sources/simulated.js';
import type { MarketSource, SourceEvent } from '../../src/marketdata/types.js';
import type { Candle, Tick } from '../../src/contracts/candle.js';

const MIN = 60_000;
const WED_1200 = Date.UTC(2026, 0, 7, 12, 0); // a Wednesday
const FRI_2158 = Date.UTC(2026, 0, 9, 21, 58);
const FRI_2200 = Date.UTC(2026, 0, 9, 22, 0);
const SUN_2200 = Date.UTC(2026, 0, 11, 22, 0);

interface Stamped {
  readonly ev: SourceEvent;
  /** Real ms since the iteration started. */
  readonly at: number;
}

/** Iterate until `stop` says so or `maxMs` of real time pass; `pause` runs after each event (slow consumer). */
async function collect(
  src: MarketSource,
  stop: (ev: SourceEvent, seen: readonly Stamped[]) => boolean,
  maxMs = 10_000,
  pause?: (ev: SourceEvent, seen: readonly Stamped[]) => Promise<void>,
): Promise<Stamped[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), maxMs);
  const seen: Stamped[] = [];
  const t0 = performance.now();
  try {
    for await (const ev of src.events(ac.signal)) {
      seen.push({ ev, at: performance.now() - t0 });
      if (stop(ev, seen)) break;
      if (pause) await pause(ev, seen);
    }
  } finally {
    clearTimeout(timer);
  }
  return seen;
}

const candlesOf = (seen: readonly Stamped[], key?: string): Candle[] =>
  seen.flatMap(({ ev }) =>
    ev.kind === 'candle' && (key === undefined || ev.candle.instrumentKey === key) ? [ev.candle] : [],
  );
const ticksOf = (seen: readonly Stamped[], key?: string): Tick[] =>
  seen.flatMap(({ ev }) =>
    ev.kind === 'tick' && (key === undefined || ev.tick.instrumentKey === key) ? [ev.tick] : [],
  );

function countPerKey(seen: readonly Stamped[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of candlesOf(seen)) m.set(c.instrumentKey, (m.get(c.instrumentKey) ?? 0) + 1);
  return m;
}

const untilCandles =
  (keys: readonly string[], n: number) =>
  (_ev: SourceEvent, seen: readonly Stamped[]): boolean => {
    if (_ev.kind !== 'candle') return false;
    const m = countPerKey(seen);
    return keys.every((k) => (m.get(k) ?? 0) >= n);
  };

function expectValidCandle(c: Candle): void {
  expect(c.timeframe).toBe('1m');
  expect(c.origin).toBe('sim');
  expect(c.tsOpen % MIN).toBe(0);
  expect(c.tsClose).toBe(c.tsOpen + MIN);
  expect(c.high).toBeGreaterThanOrEqual(Math.max(c.open, c.close));
  expect(c.low).toBeLessThanOrEqual(Math.min(c.open, c.close));
  expect(c.low).toBeGreaterThan(0);
  expect(c.volumeBase).toBeGreaterThan(0);
  expect(c.volumeQuote).not.toBeNull();
  // volume_quote = Σ volume × price, so it lies between volume × low and volume × high.
  expect(c.volumeQuote ?? 0).toBeGreaterThanOrEqual(c.volumeBase * c.low * 0.999_999);
  expect(c.volumeQuote ?? 0).toBeLessThanOrEqual(c.volumeBase * c.high * 1.000_001);
}

/** One candle per minute, consecutive from `firstOpen`. */
function expectConsecutive(candles: readonly Candle[], firstOpen: number): void {
  candles.forEach((c, i) => expect(c.tsOpen).toBe(firstOpen + i * MIN));
}

describe('simulated source', () => {
  it('emits exactly one closed, consistent 1m candle per instrument per simulated minute, in order', async () => {
    const keys = ['binance:spot:BTCUSDT', 'sim:spot:ETHUSDT', 'sim:spot:FOOBAR', 'sim:fx:EURUSD'];
    const speed = 600;
    const src = createSimulatedSource({
      instruments: [...keys.slice(0, 3), { instrumentKey: 'sim:fx:EURUSD', marketId: 7 }],
      seed: 3,
      speed,
      startMs: WED_1200,
    });
    expect(src.name).toBe('simulated');
    expect(src.instruments.map((i) => i.instrumentKey)).toEqual(keys);
    expect(src.instruments[0]).toEqual({
      instrumentKey: 'binance:spot:BTCUSDT',
      symbol: 'BTCUSDT',
      marketId: stableMarketId('binance:spot:BTCUSDT'),
    });
    expect(src.instruments[3]?.marketId).toBe(7);

    const seen = await collect(src, untilCandles(keys, 6));
    expect(seen[0]?.ev).toEqual({ kind: 'state', state: 'STREAM', reason: expect.any(String) as string });
    // FX instruments announce their market state at start; spot ones have no hours.
    expect(seen.filter(({ ev }) => ev.kind === 'market').map(({ ev }) => ev)).toEqual([
      { kind: 'market', instrumentKey: 'sim:fx:EURUSD', open: true },
    ]);
    expect(seen.some(({ ev }) => ev.kind === 'invalid')).toBe(false);

    const start = new Map([
      ['binance:spot:BTCUSDT', 60_000],
      ['sim:spot:ETHUSDT', 3_000],
      ['sim:spot:FOOBAR', 100],
      ['sim:fx:EURUSD', 1.08],
    ]);
    for (const key of keys) {
      const candles = candlesOf(seen, key);
      expect(candles.length).toBeGreaterThanOrEqual(6);
      expectConsecutive(candles, WED_1200);
      for (const c of candles) {
        expectValidCandle(c);
        expect(c.symbol).toBe(key.split(':')[2]);
        expect(c.marketId).toBe(src.instruments.find((i) => i.instrumentKey === key)?.marketId);
      }
      const p0 = start.get(key) ?? 0;
      expect(Math.abs((candles[0]?.open ?? 0) / p0 - 1)).toBeLessThan(0.02);

      const ticks = ticksOf(seen, key);
      expect(ticks.length).toBeGreaterThan(0);
      for (const [i, t] of ticks.entries()) {
        expect(t.ask).toBeGreaterThan(t.bid);
        expect(t.bid).toBeGreaterThan(0);
        if (i > 0) expect(t.tsMs).toBeGreaterThan(ticks[i - 1]?.tsMs ?? Infinity);
      }
    }

    // Data in order: a candle closes only after all ticks of its minute, and no tick of a later
    // minute comes before it. And it is closed: received no earlier than its close on the clock.
    const lastTickTs = new Map<string, number>();
    for (const { ev, at } of seen) {
      if (ev.kind === 'tick') lastTickTs.set(ev.tick.instrumentKey, ev.tick.tsMs);
      if (ev.kind === 'candle') {
        expect(lastTickTs.get(ev.candle.instrumentKey) ?? 0).toBeLessThan(ev.candle.tsClose);
        expect(at).toBeGreaterThanOrEqual((ev.candle.tsClose - WED_1200) / speed - 2);
      }
    }
  });

  it('is deterministic: the same seed and start give the same candles, at any speed', async () => {
    const keys = ['sim:spot:BTCUSDT', 'sim:fx:XAUUSD', 'binance:spot:BTCUSDT'];
    const run = async (seed: number, speed: number): Promise<Candle[]> => {
      const src = createSimulatedSource({ instruments: keys, seed, speed, startMs: WED_1200 });
      const seen = await collect(src, untilCandles(keys, 4));
      return keys.flatMap((k) => candlesOf(seen, k).slice(0, 4));
    };
    const a = await run(42, 600);
    const b = await run(42, 600);
    const fast = await run(42, 6000);
    const other = await run(43, 600);
    expect(a).toHaveLength(12);
    expect(b).toEqual(a);
    expect(fast).toEqual(a);
    expect(other).toHaveLength(12);
    expect(other.map((c) => c.close)).not.toEqual(a.map((c) => c.close));
    // Two instruments with the same symbol on different exchanges walk differently.
    expect(a.slice(0, 4).map((c) => c.close)).not.toEqual(a.slice(8, 12).map((c) => c.close));
  });

  it('FX closes at the weekend: no ticks or candles from Friday 22:00 to Sunday 22:00 UTC, spot goes on', async () => {
    const fx = 'sim:fx:XAUUSD';
    const spot = 'sim:spot:BTCUSDT';
    const src = createSimulatedSource({ instruments: [fx, spot], speed: 200_000, startMs: FRI_2158 });
    const seen = await collect(
      src,
      (ev) =>
        ev.kind === 'candle' && ev.candle.instrumentKey === fx && ev.candle.tsOpen >= SUN_2200 + 2 * MIN,
    );

    const fxCandles = candlesOf(seen, fx);
    expect(fxCandles.map((c) => c.tsOpen)).toEqual([
      FRI_2158,
      FRI_2158 + MIN,
      SUN_2200,
      SUN_2200 + MIN,
      SUN_2200 + 2 * MIN,
    ]);
    fxCandles.forEach(expectValidCandle);
    const fxEvents = seen
      .map(({ ev }) => ev)
      .filter(
        (ev) =>
          (ev.kind === 'market' && ev.instrumentKey === fx) ||
          (ev.kind === 'candle' && ev.candle.instrumentKey === fx),
      )
      .map((ev) =>
        ev.kind === 'market'
          ? `market ${ev.open ? 'open' : 'closed'}`
          : `candle ${new Date(ev.kind === 'candle' ? ev.candle.tsOpen : 0).toISOString()}`,
      );
    expect(fxEvents).toEqual([
      'market open',
      'candle 2026-01-09T21:58:00.000Z',
      'candle 2026-01-09T21:59:00.000Z',
      'market closed',
      'market open',
      'candle 2026-01-11T22:00:00.000Z',
      'candle 2026-01-11T22:01:00.000Z',
      'candle 2026-01-11T22:02:00.000Z',
    ]);
    // Nothing of the FX instrument while closed.
    expect(ticksOf(seen, fx).filter((t) => t.tsMs >= FRI_2200 && t.tsMs < SUN_2200)).toEqual([]);
    // The weekend price picks up where Friday left it.
    expect(Math.abs((fxCandles[2]?.open ?? 0) / (fxCandles[1]?.close ?? 1) - 1)).toBeLessThan(0.001);

    // Spot trades through the weekend: every minute, no gap.
    const spotCandles = candlesOf(seen, spot).filter((c) => c.tsOpen <= SUN_2200);
    expect(spotCandles.length).toBe((SUN_2200 - FRI_2158) / MIN + 1);
    expectConsecutive(spotCandles, FRI_2158);
    expect(seen.some(({ ev }) => ev.kind === 'state' && ev.state === 'IDLE')).toBe(false);
  });

  it('is IDLE while every market is closed, then opens on Sunday 22:00 UTC', async () => {
    const fx = 'sim:fx:EURUSD';
    const sat = Date.UTC(2026, 0, 10, 12, 0);
    const src = createSimulatedSource({ instruments: [fx], speed: 200_000, startMs: sat });
    const seen = await collect(src, (_ev, all) => candlesOf(all).length >= 5);
    const notices = seen.map(({ ev }) => ev).filter((ev) => ev.kind !== 'tick' && ev.kind !== 'candle');
    expect(notices).toEqual([
      { kind: 'state', state: 'IDLE', reason: expect.any(String) as string },
      { kind: 'market', instrumentKey: fx, open: false },
      { kind: 'market', instrumentKey: fx, open: true },
      { kind: 'state', state: 'STREAM', reason: expect.any(String) as string },
    ]);
    const candles = candlesOf(seen);
    expectConsecutive(candles, SUN_2200);
    // Ticks resume with the open (the first batch goes out at once; later ones at most 10 per real second).
    expect(ticksOf(seen).length).toBeGreaterThan(0);
    expect(ticksOf(seen).every((t) => t.tsMs >= SUN_2200)).toBe(true);
  });

  it('speed 600 runs ten simulated minutes per real second', async () => {
    const key = 'sim:spot:BTCUSDT';
    const src = createSimulatedSource({ instruments: [key], speed: 600, startMs: WED_1200 });
    const seen = await collect(src, () => false, 1000);
    const candles = candlesOf(seen);
    expect(candles.length).toBeGreaterThanOrEqual(8);
    expect(candles.length).toBeLessThanOrEqual(10);
    expectConsecutive(candles, WED_1200);
    // Minute k (closing at k × 100 ms of real time) is not published before its close.
    for (const { ev, at } of seen) {
      if (ev.kind === 'candle') expect(at).toBeGreaterThanOrEqual((ev.candle.tsClose - WED_1200) / 600 - 2);
    }
  });

  it('a slow consumer makes the simulation fall behind, never skip a minute', async () => {
    const keys = ['sim:spot:BTCUSDT', 'sim:spot:ETHUSDT'];
    const src = createSimulatedSource({ instruments: keys, speed: 1200, startMs: WED_1200 });
    let stalled = false;
    const seen = await collect(src, untilCandles(keys, 20), 10_000, async (ev) => {
      if (ev.kind === 'candle' && !stalled) {
        stalled = true;
        await sleep(700); // 14 simulated minutes
      } else if (ev.kind === 'candle') await sleep(5);
    });
    for (const k of keys) {
      const candles = candlesOf(seen, k);
      expect(candles.length).toBeGreaterThanOrEqual(20);
      expectConsecutive(candles, WED_1200);
    }
    // While it catches up it hands out the backlog, a bounded number of ticks, nothing else.
    const ticks = ticksOf(seen, keys[0]);
    expect(ticks.length).toBeLessThanOrEqual(Math.ceil(((seen.at(-1)?.at ?? 0) / 1000) * 10) + 2);
  });

  it('1,000 instruments at speed 60 keep up, and ticks stay under the cap', async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `sim:spot:S${i}USDT`);
    const src = createSimulatedSource({
      instruments: keys,
      speed: 60,
      startMs: WED_1200,
      maxTicksPerSecond: 10,
    });
    const seen = await collect(src, () => false, 2400);
    const byMinute = new Map<number, { n: number; lastAt: number }>();
    for (const { ev, at } of seen) {
      if (ev.kind !== 'candle') continue;
      const m = byMinute.get(ev.candle.tsOpen) ?? { n: 0, lastAt: 0 };
      byMinute.set(ev.candle.tsOpen, { n: m.n + 1, lastAt: at });
    }
    // Minute 1 closes at 1 s and minute 2 at 2 s of real time; all 1,000 candles follow at once.
    expect(byMinute.get(WED_1200)?.n).toBe(1000);
    expect(byMinute.get(WED_1200 + MIN)?.n).toBe(1000);
    expect(byMinute.get(WED_1200)?.lastAt).toBeLessThan(1400);
    expect(byMinute.get(WED_1200 + MIN)?.lastAt).toBeLessThan(2350);
    const perKey = new Map<string, number>();
    for (const t of ticksOf(seen)) perKey.set(t.instrumentKey, (perKey.get(t.instrumentKey) ?? 0) + 1);
    expect(perKey.size).toBe(1000);
    expect(Math.max(...perKey.values())).toBeLessThanOrEqual(Math.ceil(2.4 * 10) + 1);
    expect(Math.min(...perKey.values())).toBeGreaterThanOrEqual(10);
  });

  it('stops promptly on abort, asleep or busy', async () => {
    for (const speed of [1, 1_000_000]) {
      const src = createSimulatedSource({
        instruments: Array.from({ length: 50 }, (_, i) => `sim:spot:S${i}USDT`),
        speed,
        startMs: WED_1200,
      });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      let abortedAt = 0;
      ac.signal.addEventListener('abort', () => (abortedAt = performance.now()));
      let after = 0;
      for await (const _ev of src.events(ac.signal)) {
        if (ac.signal.aborted) after += 1;
      }
      expect(performance.now() - abortedAt).toBeLessThan(100);
      expect(after).toBeLessThanOrEqual(1);
    }
    // Already aborted: nothing at all.
    const src = createSimulatedSource({});
    const out: SourceEvent[] = [];
    for await (const ev of src.events(AbortSignal.abort())) out.push(ev);
    expect(out).toEqual([]);
  });

  it('rejects bad options with a ConfigError naming the key', () => {
    const cases: [Parameters<typeof createSimulatedSource>[0], string][] = [
      [{ instruments: ['sim:spot:btc usdt'] }, 'market_data.sources.simulated.instruments.0'],
      [
        { instruments: ['sim:spot:BTCUSDT', 'sim:spot:BTCUSDT'] },
        'market_data.sources.simulated.instruments.1',
      ],
      [{ instruments: [] }, 'market_data.sources.simulated.instruments'],
      [{ speed: 0 }, 'market_data.sources.simulated.speed'],
      [{ speed: Number.NaN }, 'market_data.sources.simulated.speed'],
      [{ tickIntervalMs: 5 }, 'market_data.sources.simulated.tick_interval_ms'],
      [{ startMs: 1.5 }, 'market_data.sources.simulated.start'],
      [
        { instruments: [{ instrumentKey: 'sim:spot:X', startPrice: -1 }] },
        'market_data.sources.simulated.instruments.0.start_price',
      ],
    ];
    for (const [opts, key] of cases) {
      let err: unknown;
      try {
        createSimulatedSource(opts);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe(key);
    }
  });
});
