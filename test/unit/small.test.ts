import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay } from '../../src/util/backoff.js';
import { sleep } from '../../src/util/sleep.js';
import { compareStreamIds, epochMsOfId, idFromEpochMs, parseStreamId } from '../../src/bus/stream-id.js';
import { InvalidStreamIdError } from '../../src/bus/errors.js';

describe('backoff', () => {
  it('doubles from the base up to the cap and resets', () => {
    const b = new Backoff({ baseMs: 5000, maxMs: 300_000 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => b.next())).toEqual([
      5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000,
    ]);
    b.reset();
    expect(b.next()).toBe(5000);
  });

  it('jitter stays within the range', () => {
    for (const r of [0, 0.5, 0.999]) {
      const d = backoffDelay({ baseMs: 1000, maxMs: 10_000, jitter: 0.5 }, 2, () => r);
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(2000);
    }
  });

  it('sleep ends early on abort', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 20);
    await sleep(10_000, ac.signal);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

describe('stream IDs', () => {
  it('parse, compare and derive', () => {
    expect(parseStreamId('1700000000000-3')).toEqual({ ms: 1700000000000n, seq: 3n });
    expect(compareStreamIds('1-10', '2-0')).toBeLessThan(0);
    expect(compareStreamIds('2-10', '2-9')).toBeGreaterThan(0);
    expect(compareStreamIds('18446744073709551615-0', '18446744073709551614-99')).toBeGreaterThan(0);
    expect(idFromEpochMs(Date.UTC(2026, 1, 10, 12, 34))).toBe('1770726840000-0');
    expect(epochMsOfId('1770726840000-0')).toBe(1770726840000);
  });

  it.each(['', '1', '1-', '-1', 'a-b', '1-0-0', '1.5-0'])('refuses %j', (bad) => {
    expect(() => parseStreamId(bad)).toThrow(InvalidStreamIdError);
  });
});
