import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../src/marketdata/kit/event-queue.js';

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('event queue (no sockets)', () => {
  it('pauses at capacity, resumes at half, makes pushes wait and refuses droppable items beyond twice', async () => {
    const log: string[] = [];
    const q = new EventQueue<number>(4, { onHigh: () => log.push('high'), onLow: () => log.push('low') });
    const ac = new AbortController();
    for (let i = 0; i < 4; i += 1) q.offer(i, true);
    expect(log).toEqual(['high']);
    for (let i = 4; i < 8; i += 1) expect(q.offer(i, true)).toBe(true);
    expect(q.offer(8, true)).toBe(false); // droppable beyond 2 x capacity
    expect(q.offer(9)).toBe(true); // non-droppable always taken
    let pushed = false;
    const push = q.push(10, ac.signal).then((ok) => (pushed = ok));
    await delay(5);
    expect(pushed).toBe(false);
    const got: number[] = [];
    for (let i = 0; i < 6; i += 1) got.push((await q.shift(ac.signal)) ?? -1);
    await push; // room below capacity
    expect(pushed).toBe(true);
    expect(log).toEqual(['high']);
    while (q.size > 0) got.push((await q.shift(ac.signal)) ?? -1);
    expect(log).toEqual(['high', 'low']);
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 9, 10]);
    const waiting = q.shift(ac.signal);
    ac.abort();
    expect(await waiting).toBeUndefined();
  });
});
