/**
 * The `simulated` source (`--fake`): ticks from a seeded random walk and closed 1m candles,
 * for any number of instruments under any valid instrument key, on a simulated clock that can run
 * faster than the real one.
 *
 * Clock: simulated now = `startMs` + real time since the first event was asked for × `speed`. Every call
 * of `events()` is a new, independent run from `startMs`.
 *
 * Walk: every instrument steps on a fixed grid of simulated time, `startMs + k × tickIntervalMs`, drawing
 * from its own PRNG (mulberry32 seeded from `seed` and the instrument key). Steps happen only while
 * the instrument's market is open (`market-hours.ts`); while closed nothing is drawn and nothing is
 * emitted. Candles are therefore a pure function of (seed, key, startMs, tickIntervalMs, start price)
 * and do not depend on `speed`, on the machine or on how fast the consumer reads.
 *
 * Candles: at every simulated minute boundary, one closed 1m candle per open instrument, built from
 * the mid prices of the steps inside that minute (origin `sim`). A minute is emitted only when the
 * instrument was simulated for all of it (not the partial minute before a non-aligned `startMs`).
 * At one boundary the candles come first, then market changes at that instant.
 *
 * Ticks: the walk may step far more often than anyone wants ticks (1,000 instruments at speed 60 are
 * 60,000 steps a second), so ticks are thinned: at most `maxTicksPerSecond` ticks per instrument per
 * real second (default 10), each the latest bid/ask at the time of emission (`tsMs` = simulated time of
 * the step). So the total is bounded by instruments × `maxTicksPerSecond` per real second.
 *
 * Back-pressure: `events()` is lazy. The generator works out what is due only when the consumer asks
 * for the next event; a slow consumer makes the simulation fall behind its clock, never skip a minute,
 * and nothing queues up (at most one minute's candles, one per instrument, are held at a time).
 *
 * Cost: a step is two PRNG draws and a few multiplications; instruments are stepped in batches of
 * grid steps between wake-ups (the loop sleeps at least `MIN_SLEEP_MS` when caught up) and hands the
 * event loop a turn at least every `YIELD_EVERY_MS` of continuous work.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { isInstrumentKey } from '../../contracts/catalog.js';
import { sleep } from '../../util/sleep.js';
import { withDefaults } from '../../util/defaults.js';
import { ConfigError } from '../../util/errors.js';
import { isMarketOpen, marketHoursKind, nextChange } from '../market-hours.js';
import type { InstrumentSpec, MarketSource, SourceEvent } from '../types.js';
import type { Candle, Tick } from '../../contracts/candle.js';
import { splitInstrumentKey } from '../../contracts/catalog.js';

const MINUTE_MS = 60_000;
/** Shortest sleep when caught up, ms of real time: at high speed, steps are batched at least this much. */
export const MIN_SLEEP_MS = 4;
/** Longest stretch of work (ms of real time) before the generator gives the event loop a turn. */
export const YIELD_EVERY_MS = 8;
const CONFIG_PREFIX = 'market_data.sources.simulated';
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;

export const DEFAULT_SIM_INSTRUMENTS: readonly string[] = ['sim:spot:BTCUSDT', 'sim:fx:XAUUSD'];

/** One simulated instrument with optional overrides. */
export interface SimulatedInstrument {
  /** `<exchange>:<market_type>:<SYMBOL>`; a `fx` market type follows FX hours. */
  readonly instrumentKey: string;
  /**
   * The contract's `market_id`, a non-negative integer.
   * @defaultValue computed by `stableMarketId(instrumentKey)`
   */
  readonly marketId?: number | undefined;
  /**
   * Starting mid price, quote currency, > 0.
   * @defaultValue by symbol (see `defaultStartPrice`): BTC… 60000, ETH… 3000, XAU… 2300, EUR… 1.08, else 100
   */
  readonly startPrice?: number | undefined;
}

export interface SimulatedSourceOptions {
  /**
   * Instrument keys or specs.
   * @defaultValue `DEFAULT_SIM_INSTRUMENTS` (`sim:spot:BTCUSDT` and `sim:fx:XAUUSD`)
   */
  readonly instruments?: readonly (string | SimulatedInstrument)[] | undefined;
  /**
   * PRNG seed; the same seed, start and tick interval give the same candles.
   * @defaultValue 1
   */
  readonly seed?: number | string | undefined;
  /**
   * Simulated milliseconds per real millisecond, > 0 and ≤ 10,000,000 (1 is real time).
   * @defaultValue 1
   */
  readonly speed?: number | undefined;
  /**
   * Simulated start, epoch ms (integer).
   * @defaultValue now, floored to the minute
   */
  readonly startMs?: number | undefined;
  /**
   * Simulated ms between two steps of the walk, integer 10…60,000.
   * @defaultValue 1000
   */
  readonly tickIntervalMs?: number | undefined;
  /**
   * Cap of emitted ticks per instrument per real second, ticks; 0 = no ticks.
   * @defaultValue 10
   */
  readonly maxTicksPerSecond?: number | undefined;
  /**
   * Source name (`md.status.<name>`).
   * @defaultValue `simulated`
   */
  readonly name?: string | undefined;
}

/** The defaults of {@link SimulatedSourceOptions}, applied when the source resolves its options. */
export const SIMULATED_DEFAULTS = Object.freeze({
  instruments: DEFAULT_SIM_INSTRUMENTS,
  seed: 1,
  speed: 1,
  tickIntervalMs: 1000,
  maxTicksPerSecond: 10,
  name: 'simulated',
} satisfies Partial<SimulatedSourceOptions>);

/** A stable positive 31-bit id of an instrument key (FNV-1a), for sources without market ids. */
export function stableMarketId(instrumentKey: string): number {
  return fnv1a(instrumentKey) & 0x7fffffff || 1;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3 finalizer: spreads a 32-bit hash over all bits (nearby seeds → unrelated streams). */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const START_PRICES: readonly (readonly [string, number])[] = [
  ['BTC', 60_000],
  ['ETH', 3_000],
  ['XAU', 2_300],
  ['EUR', 1.08],
];

export function defaultStartPrice(symbol: string): number {
  for (const [prefix, price] of START_PRICES) if (symbol.startsWith(prefix)) return price;
  return 100;
}

interface ResolvedInstrument {
  readonly spec: InstrumentSpec;
  readonly startPrice: number;
}

interface ResolvedOptions {
  readonly name: string;
  readonly instruments: readonly ResolvedInstrument[];
  readonly seed: string;
  readonly speed: number;
  readonly startMs: number;
  readonly tickIntervalMs: number;
  readonly maxTicksPerSecond: number;
}

function resolveOptions(options: SimulatedSourceOptions): ResolvedOptions {
  const opts = withDefaults(SIMULATED_DEFAULTS, options);
  const name = opts.name;
  if (!NAME_RE.test(name)) throw new ConfigError(`${CONFIG_PREFIX}.name`, `expected ${NAME_RE.source}`);
  const speed = opts.speed;
  if (!Number.isFinite(speed) || speed <= 0 || speed > 1e7) {
    throw new ConfigError(`${CONFIG_PREFIX}.speed`, `expected a number > 0 and ≤ 10000000, got ${speed}`);
  }
  const startMs = opts.startMs ?? Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;
  if (!Number.isSafeInteger(startMs) || startMs < 0) {
    throw new ConfigError(`${CONFIG_PREFIX}.start`, `expected epoch milliseconds, got ${startMs}`);
  }
  const tickIntervalMs = opts.tickIntervalMs;
  if (!Number.isInteger(tickIntervalMs) || tickIntervalMs < 10 || tickIntervalMs > MINUTE_MS) {
    throw new ConfigError(
      `${CONFIG_PREFIX}.tick_interval_ms`,
      `expected an integer from 10 to 60000, got ${tickIntervalMs}`,
    );
  }
  const maxTicksPerSecond = opts.maxTicksPerSecond;
  if (!Number.isFinite(maxTicksPerSecond) || maxTicksPerSecond < 0) {
    throw new ConfigError(
      `${CONFIG_PREFIX}.max_ticks_per_second`,
      `expected a number ≥ 0, got ${maxTicksPerSecond}`,
    );
  }
  const seed = opts.seed;
  if (typeof seed === 'number' && !Number.isFinite(seed)) {
    throw new ConfigError(`${CONFIG_PREFIX}.seed`, `expected a finite number or a string`);
  }
  const list = opts.instruments;
  if (list.length === 0) throw new ConfigError(`${CONFIG_PREFIX}.instruments`, 'expected at least one');
  const seen = new Set<string>();
  const instruments = list.map((item, i): ResolvedInstrument => {
    const key = `${CONFIG_PREFIX}.instruments.${i}`;
    const it: SimulatedInstrument = typeof item === 'string' ? { instrumentKey: item } : item;
    if (!isInstrumentKey(it.instrumentKey)) {
      throw new ConfigError(
        key,
        `invalid instrument key ${JSON.stringify(it.instrumentKey.slice(0, 120))}: expected <exchange>:<market_type>:<SYMBOL>`,
      );
    }
    if (seen.has(it.instrumentKey)) throw new ConfigError(key, `duplicate instrument ${it.instrumentKey}`);
    seen.add(it.instrumentKey);
    const marketId = it.marketId ?? stableMarketId(it.instrumentKey);
    if (!Number.isSafeInteger(marketId) || marketId < 0) {
      throw new ConfigError(`${key}.market_id`, `expected a non-negative integer, got ${marketId}`);
    }
    const { symbol } = splitInstrumentKey(it.instrumentKey);
    const startPrice = it.startPrice ?? defaultStartPrice(symbol);
    if (!Number.isFinite(startPrice) || startPrice <= 0) {
      throw new ConfigError(`${key}.start_price`, `expected a number > 0, got ${startPrice}`);
    }
    return { spec: { instrumentKey: it.instrumentKey, symbol, marketId }, startPrice };
  });
  return { name, instruments, seed: String(seed), speed, startMs, tickIntervalMs, maxTicksPerSecond };
}

/** The walk and the open minute of one instrument. Plain fields: this is the hot path. */
class SimInstrument {
  readonly key: string;
  readonly symbol: string;
  readonly marketId: number;
  /** Price grid: prices are rounded to 1/scale (about 6 significant digits of the start price). */
  readonly scale: number;
  /** Step size: price *= 1 + stepSigma × u, u uniform in [-1, 1]. */
  readonly stepSigma: number;
  /** Mean base volume of a step (scaled by 0.5…1.5). */
  readonly stepVolume: number;
  /** Half the relative bid/ask spread. */
  readonly halfSpread: number;
  rng: number;
  price: number;
  mid: number;
  open: boolean;
  /** Epoch ms of the next open/close; Infinity when always open. */
  nextChangeAt: number;
  tickDue = false;
  // The minute being built.
  full = false;
  count = 0;
  o = 0;
  h = 0;
  l = 0;
  c = 0;
  vb = 0;
  vq = 0;

  constructor(r: ResolvedInstrument, seed: string, tickIntervalMs: number, startMs: number) {
    this.key = r.spec.instrumentKey;
    this.symbol = r.spec.symbol;
    this.marketId = r.spec.marketId;
    const decimals = Math.min(10, Math.max(0, 6 - Math.floor(Math.log10(r.startPrice))));
    this.scale = 10 ** decimals;
    const fx = marketHoursKind(this.key) === 'fx';
    const sigmaPerMinute = fx ? 0.0003 : 0.001;
    // Uniform[-1,1] has standard deviation 1/√3; the walk's per-minute sd is sigmaPerMinute.
    this.stepSigma = sigmaPerMinute * Math.sqrt(3 * (tickIntervalMs / MINUTE_MS));
    this.stepVolume = (500_000 / r.startPrice) * (tickIntervalMs / MINUTE_MS);
    this.halfSpread = (fx ? 0.5e-4 : 1e-4) / 2;
    this.rng = mix32(fnv1a(`${seed}\u0000${this.key}`));
    this.price = r.startPrice;
    this.mid = Math.round(r.startPrice * this.scale) / this.scale;
    this.open = isMarketOpen(this.key, startMs);
    this.nextChangeAt = nextChange(this.key, startMs) ?? Infinity;
    this.full = this.open && startMs % MINUTE_MS === 0;
  }

  /** `n` steps of the walk, all inside the current minute. */
  step(n: number): void {
    let s = this.rng;
    let p = this.price;
    let mid = this.mid;
    let { count, o, h, l, vb, vq } = this;
    const { scale, stepSigma, stepVolume } = this;
    for (let i = 0; i < n; i++) {
      // mulberry32, twice.
      s = (s + 0x6d2b79f5) | 0;
      let t = Math.imul(s ^ (s >>> 15), 1 | s);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      const u1 = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      s = (s + 0x6d2b79f5) | 0;
      t = Math.imul(s ^ (s >>> 15), 1 | s);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      const u2 = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      p *= 1 + stepSigma * (2 * u1 - 1);
      mid = Math.round(p * scale) / scale;
      if (mid <= 0) mid = 1 / scale;
      const v = stepVolume * (0.5 + u2);
      if (count === 0) {
        o = mid;
        h = mid;
        l = mid;
      } else if (mid > h) h = mid;
      else if (mid < l) l = mid;
      vb += v;
      vq += v * mid;
      count++;
    }
    this.rng = s;
    this.price = p;
    this.mid = mid;
    this.c = mid;
    this.count = count;
    this.o = o;
    this.h = h;
    this.l = l;
    this.vb = vb;
    this.vq = vq;
    if (n > 0) this.tickDue = true;
  }

  /** Forget the minute being built; `full` says whether the next one is simulated from its start. */
  resetMinute(full: boolean): void {
    this.full = full;
    this.count = 0;
    this.vb = 0;
    this.vq = 0;
  }

  candle(tsOpen: number): Candle {
    return {
      instrumentKey: this.key,
      symbol: this.symbol,
      marketId: this.marketId,
      timeframe: '1m',
      tsOpen,
      tsClose: tsOpen + MINUTE_MS,
      open: this.o,
      high: this.h,
      low: this.l,
      close: this.c,
      volumeBase: Math.round(this.vb * 1e8) / 1e8 || 1e-8,
      volumeQuote: Math.round(this.vq * 1e4) / 1e4 || 1e-4,
      origin: 'sim',
    };
  }

  tick(tsMs: number): Tick {
    const { mid, scale } = this;
    const bid = Math.round(mid * (1 - this.halfSpread) * scale) / scale;
    let ask = Math.round(mid * (1 + this.halfSpread) * scale) / scale;
    if (ask <= bid) ask = (Math.round(bid * scale) + 1) / scale;
    return { instrumentKey: this.key, symbol: this.symbol, bid, ask, tsMs };
  }
}

function earliestChange(insts: readonly SimInstrument[]): number {
  let min = Infinity;
  for (const i of insts) if (i.nextChangeAt < min) min = i.nextChangeAt;
  return min;
}

/** The whole simulation at one simulated instant (`cursor`). Knows nothing about real time. */
class Simulation {
  readonly insts: SimInstrument[];
  private readonly startMs: number;
  private readonly interval: number;
  /** Simulated time up to which everything has been computed (steps strictly before it). */
  cursor: number;
  private nextStepAt: number;
  private nextBoundary: number;
  private nextChangeAt: number;
  private openCount: number;
  /** Simulated time of the latest step. */
  private lastStepAt: number;

  constructor(o: ResolvedOptions) {
    this.startMs = o.startMs;
    this.interval = o.tickIntervalMs;
    this.insts = o.instruments.map((r) => new SimInstrument(r, o.seed, o.tickIntervalMs, o.startMs));
    this.cursor = o.startMs;
    this.nextStepAt = o.startMs;
    this.lastStepAt = o.startMs;
    this.nextBoundary = (Math.floor(o.startMs / MINUTE_MS) + 1) * MINUTE_MS;
    this.nextChangeAt = earliestChange(this.insts);
    this.openCount = this.insts.filter((i) => i.open).length;
  }

  initialEvents(): SourceEvent[] {
    const out: SourceEvent[] = [this.stateEvent()];
    for (const i of this.insts) {
      if (i.nextChangeAt !== Infinity) out.push({ kind: 'market', instrumentKey: i.key, open: i.open });
    }
    return out;
  }

  private stateEvent(): SourceEvent {
    return this.openCount > 0
      ? { kind: 'state', state: 'STREAM', reason: 'simulated market open' }
      : { kind: 'state', state: 'IDLE', reason: 'all simulated markets closed' };
  }

  /** Simulated time at which something next has to be computed. */
  nextDue(): number {
    return this.openCount > 0
      ? Math.min(this.nextStepAt, this.nextBoundary, this.nextChangeAt)
      : this.nextChangeAt;
  }

  /**
   * Compute up to `now` but not past the next minute boundary or market change; returns the events of
   * the instant reached (candles of a closed minute, then market changes). Call again while
   * `cursor < now`.
   */
  advanceTo(now: number): SourceEvent[] {
    const out: SourceEvent[] = [];
    if (this.openCount === 0) {
      // Nothing to walk: jump straight to now or to the next opening.
      const target = Math.min(now, this.nextChangeAt);
      if (target <= this.cursor) return out;
      this.cursor = target;
      this.nextBoundary = (Math.floor(target / MINUTE_MS) + 1) * MINUTE_MS;
      this.nextStepAt = this.startMs + Math.ceil((target - this.startMs) / this.interval) * this.interval;
    } else {
      const target = Math.min(now, this.nextBoundary, this.nextChangeAt);
      if (target <= this.cursor) return out;
      const n = this.nextStepAt < target ? Math.ceil((target - this.nextStepAt) / this.interval) : 0;
      if (n > 0) {
        for (const inst of this.insts) if (inst.open) inst.step(n);
        this.nextStepAt += n * this.interval;
        this.lastStepAt = this.nextStepAt - this.interval;
      }
      this.cursor = target;
      if (target === this.nextBoundary) {
        const tsOpen = target - MINUTE_MS;
        for (const inst of this.insts) {
          if (!inst.open) continue;
          if (inst.full && inst.count > 0) out.push({ kind: 'candle', candle: inst.candle(tsOpen) });
          inst.resetMinute(true);
        }
        this.nextBoundary += MINUTE_MS;
      }
    }
    if (this.cursor >= this.nextChangeAt) this.applyMarketChanges(out);
    return out;
  }

  private applyMarketChanges(out: SourceEvent[]): void {
    const at = this.cursor;
    const wasOpen = this.openCount > 0;
    for (const inst of this.insts) {
      if (inst.nextChangeAt > at) continue;
      inst.open = isMarketOpen(inst.key, at);
      inst.nextChangeAt = nextChange(inst.key, at) ?? Infinity;
      inst.resetMinute(inst.open && at % MINUTE_MS === 0);
      inst.tickDue = false;
      this.openCount += inst.open ? 1 : -1;
      out.push({ kind: 'market', instrumentKey: inst.key, open: inst.open });
    }
    this.nextChangeAt = earliestChange(this.insts);
    if (wasOpen !== this.openCount > 0) out.push(this.stateEvent());
  }

  /** The latest tick of every open instrument that stepped since its last tick. */
  takeTicks(): SourceEvent[] {
    const out: SourceEvent[] = [];
    for (const inst of this.insts) {
      if (!inst.open || !inst.tickDue) continue;
      inst.tickDue = false;
      out.push({ kind: 'tick', tick: inst.tick(this.lastStepAt) });
    }
    return out;
  }
}

async function* simulate(
  o: ResolvedOptions,
  signal: AbortSignal,
): AsyncGenerator<SourceEvent, void, undefined> {
  const sim = new Simulation(o);
  const realStart = performance.now();
  const simNow = (): number => o.startMs + (performance.now() - realStart) * o.speed;
  const tickPeriodMs = o.maxTicksPerSecond > 0 ? 1000 / o.maxTicksPerSecond : Infinity;
  let lastTicksAt = -Infinity;
  let lastYieldAt = performance.now();

  for (const ev of sim.initialEvents()) {
    if (signal.aborted) return;
    yield ev;
  }
  while (!signal.aborted) {
    const now = simNow();
    if (sim.cursor < now) {
      for (const ev of sim.advanceTo(now)) {
        if (signal.aborted) return;
        yield ev;
      }
    }
    const real = performance.now();
    if (real - lastTicksAt >= tickPeriodMs) {
      const ticks = sim.takeTicks();
      if (ticks.length > 0) {
        lastTicksAt = real;
        for (const ev of ticks) {
          if (signal.aborted) return;
          yield ev;
        }
      }
    }
    const waitMs = (sim.nextDue() - simNow()) / o.speed;
    if (waitMs > 0) {
      // Caught up: sleep until the next step, boundary or change is due (ticks wait for the next step).
      await sleep(Math.max(MIN_SLEEP_MS, Math.min(waitMs, 60_000)), signal);
      lastYieldAt = performance.now();
    } else if (performance.now() - lastYieldAt >= YIELD_EVERY_MS) {
      // Behind (fast clock or slow consumer): keep computing, but let timers and I/O run.
      await yieldToEventLoop();
      lastYieldAt = performance.now();
    }
  }
}

/** A simulated market data source (see the file comment for the clock, the walk and the tick cap). */
export function createSimulatedSource(opts: SimulatedSourceOptions = {}): MarketSource {
  const resolved = resolveOptions(opts);
  return {
    name: resolved.name,
    instruments: resolved.instruments.map((i) => i.spec),
    events: (signal: AbortSignal): AsyncIterable<SourceEvent> => simulate(resolved, signal),
  };
}
