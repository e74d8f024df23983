/**
 * The conformance suite every streaming source must pass, written once and run against each venue of
 * `HARNESSES` (harness contract: `venue-harness.ts`). Each case starts a fresh local server speaking the
 * venue's protocol on loopback and a source for the venue's spot and derivatives keys, on a market clock
 * the case moves (connection timers are real time, hence the short timings below).
 *
 * Every case ends with a closing message of one more minute for every key and waits for it: a source
 * yields the minutes of one instrument in order, so whatever it would still yield for the earlier ones
 * has been yielded by then. It then checks, for every key, that the candles are exactly the server's
 * canonical ones for the minutes in play (once each, ascending, the venue's values compared as
 * numbers), that no message was reported invalid, and that the REST weight, the new connections and
 * the subscribe messages the server received stay within the venue's limits in every sliding window.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SourceEvent } from '../../../src/marketdata/types.js';
import { busiestWindow, canonicalNumbers, collect, numbersOf, waitFor, type Collected } from './collector.js';
import { HARNESSES } from './harnesses.js';
import type {
  ConformanceTimings,
  FakeVenueServer,
  RestCall,
  SourceUnderTest,
  VenueHarness,
} from './venue-harness.js';

const M = 60_000;
/** 2026-03-02 09:00 UTC: every case's market clock starts half a minute later. */
const T0 = Date.UTC(2026, 2, 2, 9, 0);

/**
 * Test-sized timings. Late fills are off (10 market minutes) unless a case is about them, so a minute
 * the case expects from a reconnect can come from nothing else; reconnects wait at least 240 ms, time
 * enough for a case to move the clock when the disconnect is reported.
 */
const TIMINGS: ConformanceTimings = {
  silenceTimeoutMs: 1500,
  lateGraceMs: 10 * M,
  gapCheckIntervalMs: 10,
  reconnectBaseMs: 300,
  reconnectMaxMs: 1000,
};
/** Late grace, market ms, in the cases about late closes. */
const LATE_GRACE_MS = 5000;
/** Instruments of the mass-reconnect case: more than one Binance socket holds (1,024 streams). */
const MANY = 600;

class MarketClock {
  constructor(public t: number) {}
  readonly now = (): number => this.t;
}

interface Case {
  readonly server: FakeVenueServer;
  readonly clock: MarketClock;
  readonly source: SourceUnderTest;
  readonly run: Collected;
  readonly keys: readonly string[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface StartOptions {
  readonly keys?: readonly string[];
  readonly timings?: Partial<ConformanceTimings>;
  /** Done to the server before the source exists (faults armed for its first calls). */
  readonly arm?: (server: FakeVenueServer) => void;
}

async function start(harness: VenueHarness, opts: StartOptions = {}): Promise<Case> {
  const clock = new MarketClock(T0 + 30_000);
  const server = await harness.start(clock.now);
  cleanups.push(() => server.close());
  opts.arm?.(server);
  const keys = opts.keys ?? harness.keys;
  const source = server.createSource(keys, { ...TIMINGS, ...opts.timings });
  const run = collect(source);
  cleanups.push(() => run.stop());
  return { server, clock, source, run, keys };
}

function minuteOf(t: number): number {
  return Math.floor(t / M) * M;
}

/** Every key reaches at least one socket (an open-candle update as the probe), and the feed is STREAM. */
async function ready(c: Case, keys: readonly string[] = c.keys, timeoutMs = 10_000): Promise<void> {
  let waiting = [...keys];
  await waitFor(
    () => {
      const open = minuteOf(c.clock.t);
      waiting = waiting.filter((k) => c.server.pushOpen(k, open) === 0);
      return waiting.length === 0;
    },
    `every key subscribed (still waiting: ${waiting.slice(0, 3).join(', ')})`,
    timeoutMs,
  );
  await waitFor(() => c.run.lastState() === 'STREAM', 'STREAM', timeoutMs);
}

/** Move the clock past `openTime`'s minute, send its close for every key, and wait for every key's candle. */
async function closeMinute(
  c: Case,
  openTime: number,
  keys: readonly string[] = c.keys,
  timeoutMs = 10_000,
): Promise<void> {
  c.clock.t = Math.max(c.clock.t, openTime + M + 100);
  for (const k of keys)
    expect(c.server.pushClose(k, openTime), `close of ${k} reached a socket`).toBeGreaterThan(0);
  await waitFor(
    () => keys.every((k) => c.run.has(k, openTime)),
    `${new Date(openTime).toISOString()} of every key`,
    timeoutMs,
  );
}

/** New connections after `before`: wait until `sockets` more were accepted and every key is subscribed again. */
async function reconnected(
  c: Case,
  before: number,
  sockets: number,
  keys: readonly string[] = c.keys,
  timeoutMs = 10_000,
): Promise<void> {
  await waitFor(
    () => c.server.connectionTimes.length >= before + sockets,
    `${sockets} new connection(s)`,
    timeoutMs,
  );
  await ready(c, keys, timeoutMs);
}

const isState =
  (state: string) =>
  (ev: SourceEvent): boolean =>
    ev.kind === 'state' && ev.state === state;

/** The checks every case ends with (see the file comment). */
function conforms(c: Case, from: number, to: number, keys: readonly string[] = c.keys): void {
  for (const k of keys) {
    const want = canonicalNumbers(c.server, k, from, to);
    const got = c.run.candles(k).map(numbersOf);
    expect(got, `candles of ${k}`).toEqual(want);
    expect(c.run.candles(k).every((x) => x.instrumentKey === k && x.timeframe === '1m')).toBe(true);
  }
  expect(c.run.invalid(), 'invalid notices').toEqual([]);
  const { limits } = c.server;
  expect(
    busiestWindow(c.server.restCalls, limits.restWindowMs),
    'REST weight in the busiest window',
  ).toBeLessThanOrEqual(limits.restWeight);
  expect(
    busiestWindow(
      c.server.connectionTimes.map((at) => ({ at })),
      limits.connectionsWindowMs,
    ),
    'new connections in the busiest window',
  ).toBeLessThanOrEqual(limits.connections);
  for (const [conn, times] of c.server.subscribeTimes) {
    expect(
      busiestWindow(
        times.map((at) => ({ at })),
        limits.subscribesWindowMs,
      ),
      `subscribe messages of connection ${conn} in the busiest window`,
    ).toBeLessThanOrEqual(limits.subscribes);
  }
}

/** States reported from event index `from` on: they left STREAM and the last is STREAM again. */
function leftAndCameBack(c: Case, from: number, via: string): void {
  const after = c.run.states().filter((s) => s.at >= from);
  const left = after.findIndex((s) => s.state === via);
  expect(left, `a ${via} state after event ${from}: ${JSON.stringify(after)}`).toBeGreaterThanOrEqual(0);
  expect(
    after.slice(left).some((s) => s.state === 'STREAM'),
    'STREAM again',
  ).toBe(true);
  expect(c.run.lastState()).toBe('STREAM');
}

/**
 * The disconnect cases: T0 closes live, every socket is dropped in the middle of T0 + 1, which closes
 * while the source is away (the clock moves the moment it reports the loss, before it can reconnect),
 * and T0 + 2 closes live after the reconnect. Checks what every case checks, and that the state went
 * DISCONNECTED and came back to STREAM.
 */
async function dropMidMinute(
  harness: VenueHarness,
  keys: readonly string[],
  timeoutMs: number,
): Promise<Case> {
  const c = await start(harness, { keys });
  await ready(c, keys, timeoutMs);
  await closeMinute(c, T0, keys, timeoutMs);
  c.clock.t = T0 + M + 30_000;
  const sockets = c.server.openSockets;
  const before = c.server.connectionTimes.length;
  const from = c.run.events.length;
  c.run.when(isState('DISCONNECTED'), () => {
    c.clock.t = T0 + 2 * M + 20_000;
  });
  c.server.dropAll();
  await reconnected(c, before, sockets, keys, timeoutMs);
  await waitFor(() => keys.every((k) => c.run.has(k, T0 + M)), 'T0 + 1 of every key from REST', timeoutMs);
  await closeMinute(c, T0 + 2 * M, keys, timeoutMs);
  conforms(c, T0, T0 + 2 * M, keys);
  leftAndCameBack(c, from, 'DISCONNECTED');
  return c;
}

describe.each(HARNESSES)('source conformance: $venue', (harness) => {
  it('a close sent twice is yielded once', async () => {
    const c = await start(harness);
    await ready(c);
    c.clock.t = T0 + M + 100;
    for (const k of c.keys) {
      expect(c.server.pushClose(k, T0)).toBeGreaterThan(0);
      expect(c.server.pushClose(k, T0)).toBeGreaterThan(0);
    }
    await closeMinute(c, T0 + M);
    conforms(c, T0, T0 + M);
    expect(c.source.stats().duplicates).toBeGreaterThanOrEqual(c.keys.length);
  });

  it('a close never sent is fetched from REST once the late grace has passed, not before', async () => {
    const c = await start(harness, { timings: { lateGraceMs: LATE_GRACE_MS } });
    await ready(c);
    await closeMinute(c, T0);
    c.clock.t = T0 + 2 * M + 100; // T0 + 1 closed; its close never comes
    const callsBefore = c.server.restCalls.length;
    const graceOverAt = Date.now();
    c.clock.t = T0 + 2 * M + LATE_GRACE_MS + 100;
    await waitFor(() => c.keys.every((k) => c.run.has(k, T0 + M)), 'T0 + 1 of every key from REST');
    expect(c.server.restCalls.slice(callsBefore).length).toBeGreaterThan(0);
    expect(c.server.restCalls.filter((r) => r.at < graceOverAt)).toHaveLength(callsBefore);
    await closeMinute(c, T0 + 2 * M);
    conforms(c, T0, T0 + 2 * M);
    for (const k of c.keys) expect(c.run.candles(k).map((x) => x.origin)).toEqual(['ws', 'rest', 'ws']);
  });

  it('a close sent late, after the REST fill, is not yielded again', async () => {
    const c = await start(harness, { timings: { lateGraceMs: LATE_GRACE_MS } });
    await ready(c);
    await closeMinute(c, T0);
    c.clock.t = T0 + 2 * M + LATE_GRACE_MS + 100;
    await waitFor(() => c.keys.every((k) => c.run.has(k, T0 + M)), 'T0 + 1 of every key from REST');
    const dupsBefore = c.source.stats().duplicates;
    for (const k of c.keys) expect(c.server.pushClose(k, T0 + M)).toBeGreaterThan(0);
    await closeMinute(c, T0 + 2 * M);
    conforms(c, T0, T0 + 2 * M);
    expect(c.source.stats().duplicates - dupsBefore).toBeGreaterThanOrEqual(c.keys.length);
  });

  it('a minute without trades comes as the venue shows it (live and from REST), and the next minutes still come', async () => {
    const c = await start(harness);
    for (const k of c.keys) {
      c.server.zeroTrade(k, T0 + M); // its close is sent
      c.server.zeroTrade(k, T0 + 2 * M); // its close is not: filled before T0 + 3 from REST
    }
    await ready(c);
    await closeMinute(c, T0);
    c.clock.t = T0 + 2 * M + 100;
    for (const k of c.keys) c.server.pushClose(k, T0 + M); // nothing to send if the venue has no candle
    c.clock.t = T0 + 3 * M + 100;
    await closeMinute(c, T0 + 3 * M);
    await closeMinute(c, T0 + 4 * M);
    conforms(c, T0, T0 + 4 * M);
  });

  it('every socket dropped mid-minute: DISCONNECTED, then STREAM, resubscribed, the minute closed meanwhile filled', async () => {
    const c = await dropMidMinute(harness, harness.keys, 10_000);
    for (const k of c.keys) expect(c.run.candles(k)[1]?.origin).toBe('rest');
  });

  it("the venue's server-initiated close: reconnected at once (no backoff), nothing lost", async () => {
    // A 10 s backoff would time the case out: only an immediate reconnect is quick enough.
    const c = await start(harness, { timings: { reconnectBaseMs: 10_000, reconnectMaxMs: 10_000 } });
    await ready(c);
    await closeMinute(c, T0);
    c.clock.t = T0 + M + 50_000;
    const sockets = c.server.openSockets;
    const before = c.server.connectionTimes.length;
    const connects = c.source.stats().connects;
    c.server.serverClose();
    await reconnected(c, before, sockets, c.keys, 5000);
    // The source checks for missing minutes on reconnect; move the clock only once it has seen it.
    await waitFor(() => c.source.stats().connects >= connects + sockets, 'the source saw the reconnect');
    await closeMinute(c, T0 + M);
    await closeMinute(c, T0 + 2 * M);
    conforms(c, T0, T0 + 2 * M);
    expect(c.run.lastState()).toBe('STREAM');
  });

  it('a socket open but silent for two minutes is detected and replaced; both minutes filled; the state leaves STREAM and returns', async () => {
    const c = await start(harness);
    await ready(c);
    await closeMinute(c, T0);
    c.clock.t = T0 + M + 30_000;
    const sockets = c.server.openSockets;
    const before = c.server.connectionTimes.length;
    const from = c.run.events.length;
    c.server.goSilent();
    c.clock.t = T0 + 3 * M + 20_000; // T0 + 1 and T0 + 2 close while nothing is heard
    try {
      await reconnected(c, before, sockets);
    } finally {
      c.server.speak();
    }
    await waitFor(
      () => c.keys.every((k) => c.run.has(k, T0 + M) && c.run.has(k, T0 + 2 * M)),
      'T0 + 1 and T0 + 2 of every key from REST',
    );
    await closeMinute(c, T0 + 3 * M);
    conforms(c, T0, T0 + 3 * M);
    const after = c.run.states().filter((s) => s.at >= from);
    expect(
      after.some((s) => s.state !== 'STREAM'),
      JSON.stringify(after),
    ).toBe(true);
    expect(c.run.lastState()).toBe('STREAM');
  });

  it.each(harness.keys)(
    "the first REST call answered with the venue's rate-limit error: the source waits (throttled), then fills; no call inside the Retry-After (%s)",
    async (key) => {
      const retryAfterMs = 1000;
      const c = await start(harness, {
        keys: [key],
        timings: { since: T0 - 3 * M },
        arm: (s) => s.rateLimitNext(retryAfterMs),
      });
      await waitFor(() => c.run.has(key, T0 - M), 'the minutes since T0 - 3 from REST');
      await ready(c);
      await closeMinute(c, T0);
      conforms(c, T0 - 3 * M, T0);
      const calls = c.server.restCalls;
      const isLimited = (r: RestCall): boolean => r.rateLimited ?? (r.status === 429 || r.status === 418);
      const limited = calls.find(isLimited);
      expect(limited, `a rate-limited call among ${JSON.stringify(calls)}`).toBeDefined();
      const t = limited?.at ?? 0;
      expect(calls.filter((r) => r.at > t && r.at < t + retryAfterMs)).toEqual([]);
      expect(calls.filter((r) => isLimited(r) || (r.status ?? 200) >= 400)).toEqual([limited]);
      expect(c.run.throttles().some((x) => x.throttled)).toBe(true);
      expect(c.run.throttles().at(-1)?.throttled).toBe(false);
    },
  );

  it('a REST range that includes the still-open minute: that minute comes only when it closes', async () => {
    const c = await start(harness, { timings: { since: T0 - 2 * M, lateGraceMs: LATE_GRACE_MS } });
    await waitFor(() => c.keys.every((k) => c.run.has(k, T0 - M)), 'the minutes since T0 - 2 from REST');
    await ready(c);
    for (const k of c.keys) c.server.pushOpen(k, T0);
    // T0's close is never sent: the late fill asks while T0 + 1 is open.
    c.clock.t = T0 + M + LATE_GRACE_MS + 10_000;
    await waitFor(() => c.keys.every((k) => c.run.has(k, T0)), 'T0 of every key from REST');
    for (const k of c.keys) c.server.pushOpen(k, T0 + M);
    await closeMinute(c, T0 + M);
    conforms(c, T0 - 2 * M, T0 + M);
    for (const k of c.keys)
      expect(c.run.candles(k).map((x) => x.origin)).toEqual(['rest', 'rest', 'rest', 'ws']);
  });

  it('an unknown symbol: a rejected notice naming its config key at start; the other instruments go on', async () => {
    const [bad] = harness.manyKeys(1);
    if (bad === undefined) throw new Error('manyKeys(1) gave nothing');
    expect(harness.keys).not.toContain(bad);
    const keys = [harness.keys[0] ?? '', bad, ...harness.keys.slice(1)];
    const c = await start(harness, {
      keys,
      arm: (s) => s.unknownSymbols.add(bad.split(':')[2] ?? ''),
    });
    await waitFor(() => c.run.rejected().length > 0, 'a rejected notice');
    expect(c.run.rejected()).toEqual([
      { instrumentKey: bad, configKey: 'market_data.instruments[1]', reason: expect.any(String) as unknown },
    ]);
    const good = keys.filter((k) => k !== bad);
    await ready(c, good);
    await closeMinute(c, T0, good);
    await closeMinute(c, T0 + M, good);
    conforms(c, T0, T0 + M, good);
    expect(c.run.candles(bad)).toEqual([]);
  });

  it("a reconnect of many instruments at once stays within the venue's connection and subscribe limits; every one resubscribed and filled", async () => {
    await dropMidMinute(harness, harness.manyKeys(MANY), 40_000);
  }, 120_000);
});
