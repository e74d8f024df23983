import { describe, expect, it } from 'vitest';
import { fakeTime } from '../helpers/fake-time.js';
import { HistoryLimiter, RestBudget, restBudgetFor } from '../../src/marketdata/kit/rest-budget.js';
import { SlidingWindows, type Taken } from '../../src/marketdata/kit/windows.js';

describe('history limiter (no sockets)', () => {
  it('lets maxCalls start in any 60 s window and makes the next wait for the oldest to leave it', async () => {
    const time = fakeTime();
    const seen: [boolean, number][] = [];
    const limiter = new HistoryLimiter({ maxCalls: 3, ...time, onThrottle: (th, ms) => seen.push([th, ms]) });
    for (let i = 0; i < 3; i += 1) {
      expect(await limiter.acquire()).toBe(true);
      time.t += 1000;
    }
    expect(limiter.callsInWindow).toBe(3);
    expect(limiter.waitMs()).toBe(57_000);
    expect(await limiter.acquire()).toBe(true);
    expect(time.slept).toEqual([57_000]);
    expect(time.t).toBe(60_000);
    expect(seen).toEqual([
      [true, 57_000],
      [false, 0],
    ]);
    expect(limiter.throttling).toBe(false);
  });

  it('holds every call for Retry-After and reports throttling meanwhile', async () => {
    const time = fakeTime();
    const seen: [boolean, number][] = [];
    const limiter = new HistoryLimiter({
      maxCalls: 30,
      ...time,
      onThrottle: (th, ms) => seen.push([th, ms]),
    });
    expect(await limiter.acquire()).toBe(true);
    limiter.blockFor(5000);
    expect(limiter.throttling).toBe(true);
    expect(limiter.waitMs()).toBe(5000);
    const [a, b] = await Promise.all([limiter.acquire(), limiter.acquire()]);
    expect([a, b]).toEqual([true, true]);
    expect(time.slept).toEqual([5000]); // the second caller found the block over
    expect(seen).toEqual([
      [true, 5000],
      [false, 0],
    ]);
    expect(limiter.throttling).toBe(false);
  });

  it('gives up the turn when the signal aborts', async () => {
    const limiter = new HistoryLimiter({ maxCalls: 1 });
    expect(await limiter.acquire()).toBe(true);
    const ac = new AbortController();
    const waiting = limiter.acquire(ac.signal);
    ac.abort();
    expect(await waiting).toBe(false);
    expect(limiter.callsInWindow).toBe(1);
  });
});

describe('rest budget: weight windows and Retry-After (no sockets)', () => {
  it('counts weight in every window at once and waits for enough of it to leave', () => {
    const b = new RestBudget([
      { count: 10, windowMs: 1000 },
      { count: 15, windowMs: 10_000 },
    ]);
    b.take(6, 0);
    b.take(4, 500);
    expect(b.usedIn(1000, 900)).toBe(10);
    expect(b.waitMs(1, 900)).toBe(100); // the 6 leave the 1 s window at 1000
    expect(b.waitMs(5, 1000)).toBe(0);
    b.take(5, 1000);
    // 1 s window: 4 + 5 = 9 used; 10 s window: 15 used, full until the 6 of t=0 leave at 10 000.
    expect(b.waitMs(1, 1200)).toBe(8800);
    expect(b.waitMs(1, 10_000)).toBe(0);
  });

  it('a call heavier than a window waits for the window to be empty, never for ever', () => {
    const b = new RestBudget([{ count: 5, windowMs: 1000 }]);
    expect(b.waitMs(8, 0)).toBe(0);
    b.take(8, 0);
    expect(b.waitMs(8, 10)).toBe(990);
  });

  it('blockFor holds every call until the time the venue gave', () => {
    const b = new RestBudget([{ count: 100, windowMs: 60_000 }]);
    b.blockFor(2500, 1000);
    expect(b.blocked(1000)).toBe(true);
    expect(b.waitMs(1, 1000)).toBe(2500);
    expect(b.waitMs(1, 3500)).toBe(0);
    b.blockFor(100, 3000); // a shorter block never shortens a longer one
    expect(b.waitMs(1, 3000)).toBe(500);
  });

  it('is shared per venue and REST origin: one budget for callers of one server, another for another', () => {
    const w = [{ count: 10, windowMs: 1000 }];
    const a = restBudgetFor('kitvenue', 'http://127.0.0.1:1/api/x?y=1', w);
    expect(restBudgetFor('kitvenue', 'http://127.0.0.1:1/other', w)).toBe(a);
    expect(restBudgetFor('kitvenue', 'http://127.0.0.1:2/api/x', w)).not.toBe(a);
    expect(restBudgetFor('othervenue', 'http://127.0.0.1:1/api/x', w)).not.toBe(a);
  });

  it('the limiter waits for the shared budget too, and a block there throttles it', async () => {
    let t = 0;
    const slept: number[] = [];
    const seen: [boolean, number][] = [];
    const limiter = new HistoryLimiter({
      maxCalls: 100,
      clock: () => t,
      sleep: (ms) => {
        slept.push(ms);
        t += ms;
        return Promise.resolve();
      },
      onThrottle: (th, ms) => seen.push([th, ms]),
    });
    const budget = new RestBudget([{ count: 10, windowMs: 60_000 }]);
    expect(await limiter.acquire(undefined, { budget, weight: 10 })).toBe(true);
    expect(await limiter.acquire(undefined, { budget, weight: 2 })).toBe(true);
    expect(slept).toEqual([60_000]);
    limiter.blockFor(3000, budget);
    expect(budget.blocked(t)).toBe(true);
    expect(await limiter.acquire(undefined, { budget, weight: 1 })).toBe(true);
    expect(slept).toEqual([60_000, 3000]);
    expect(seen).toEqual([
      [true, 60_000],
      [false, 0],
      [true, 3000],
      [false, 0],
    ]);
  });
});

describe('pending takes: the venue counts a call on arrival, after we start it (no sockets)', () => {
  it('a call in flight counts as now in every window until it is settled with its answer time', () => {
    const w = new SlidingWindows([{ count: 2, windowMs: 1000 }]);
    const a = w.take(1, 0, true);
    w.take(1, 0);
    // At 1500 the settled one has left the window; the pending one has not (it may arrive any time).
    expect(w.usedIn(1000, 1500)).toBe(1);
    expect(w.waitMs(2, 1500)).toBeGreaterThan(0);
    a.settle(1400); // answered at 1400: the venue counted it at or before that
    expect(w.usedIn(1000, 1500)).toBe(1);
    expect(w.waitMs(1, 1500)).toBe(0);
    expect(w.waitMs(2, 1500)).toBe(900); // until it leaves at 2400
    a.settle(9999); // settling twice changes nothing
    expect(w.waitMs(2, 1500)).toBe(900);
    expect(w.usedIn(1000, 2400)).toBe(0);
  });

  it('a window full of calls in flight makes the next caller look again shortly, never wait for ever', () => {
    const w = new SlidingWindows([{ count: 1, windowMs: 1000 }]);
    const a = w.take(1, 0, true);
    const wait = w.waitMs(1, 5000);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThan(100);
    a.settle(5000);
    expect(w.waitMs(1, 5000)).toBe(1000);
  });

  it('the limiter hands a pending take to a caller that asks for one', async () => {
    const budget = new RestBudget([{ count: 1, windowMs: 60_000 }]);
    const limiter = new HistoryLimiter({ maxCalls: 10 });
    let taken: Taken | null = null;
    expect(
      await limiter.acquire(undefined, {
        budget,
        weight: 1,
        taken: (t) => {
          taken = t;
        },
      }),
    ).toBe(true);
    expect(taken).not.toBeNull();
    expect(budget.usedIn(60_000, Date.now() + 120_000)).toBe(1); // pending: still counted
    (taken as Taken | null)?.settle(Date.now());
    expect(budget.usedIn(60_000, Date.now() + 120_000)).toBe(0);
  });
});
