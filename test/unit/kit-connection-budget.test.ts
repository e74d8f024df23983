import { describe, expect, it } from 'vitest';
import { fakeTime } from '../helpers/fake-time.js';
import { connectionBudgetFor, WindowGate } from '../../src/marketdata/kit/connection-budget.js';

describe('connection budget (no sockets)', () => {
  it('a mass reconnect takes turns: never more than the limit in any window', async () => {
    const time = fakeTime();
    // Time moves on a later turn of the event loop, so each caller notes the time its turn came.
    const sleep = (ms: number): Promise<void> =>
      new Promise((r) =>
        setImmediate(() => {
          time.t += ms;
          r();
        }),
      );
    const gate = new WindowGate({ count: 3, windowMs: 1000 }, { clock: time.clock, sleep });
    const starts: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        expect(await gate.acquire()).toBe(true);
        starts.push(time.t);
      }),
    );
    expect(starts).toEqual([0, 0, 0, 1000, 1000, 1000, 2000, 2000]);
    for (const s of starts)
      expect(starts.filter((x) => x > s - 1000 && x <= s).length).toBeLessThanOrEqual(3);
    expect(gate.queued).toBe(0);
  });

  it('a waiter whose signal aborts gives up its turn and is not counted', async () => {
    const gate = new WindowGate({ count: 1, windowMs: 60_000 });
    expect(await gate.acquire()).toBe(true);
    const ac = new AbortController();
    const waiting = gate.acquire(ac.signal);
    ac.abort();
    expect(await waiting).toBe(false);
    expect(gate.used).toBe(1);
  });

  it('subscribe pacing: five messages per second means the sixth waits for the first to leave', async () => {
    const time = fakeTime();
    const gate = new WindowGate({ count: 5, windowMs: 1000 }, time);
    for (let i = 0; i < 5; i += 1) {
      expect(await gate.acquire()).toBe(true);
      time.t += 100;
    }
    expect(gate.waitMs()).toBe(500);
    expect(await gate.acquire()).toBe(true);
    expect(time.t).toBe(1000);
  });

  it('one gate per venue and server for the whole process', () => {
    const limit = { count: 300, windowMs: 300_000 };
    const a = connectionBudgetFor('kitvenue', 'ws://127.0.0.1:9/stream?streams=a', limit);
    expect(connectionBudgetFor('kitvenue', 'ws://127.0.0.1:9/ws', limit)).toBe(a);
    expect(connectionBudgetFor('kitvenue', 'ws://127.0.0.1:10/ws', limit)).not.toBe(a);
  });
});

describe('connections counted until their handshake ends (no sockets)', () => {
  it('a connection still opening counts in the window; settled, it leaves a window after its open', async () => {
    const time = fakeTime();
    const gate = new WindowGate({ count: 1, windowMs: 1000 }, time);
    const first = await gate.acquirePending();
    expect(first).not.toBeNull();
    time.t = 3000; // a slow handshake
    expect(gate.waitMs()).toBeGreaterThan(0);
    first?.settle(3000);
    expect(gate.waitMs()).toBe(1000);
    expect(await gate.acquire()).toBe(true);
    expect(time.t).toBe(4000);
  });
});
