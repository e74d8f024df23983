import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay } from '../../src/util/backoff.js';
import { sleep } from '../../src/util/sleep.js';
import {
  compareStreamIds,
  epochMsOfId,
  idFromEpochMs,
  isStreamId,
  parseStreamId,
  STREAM_ID_PART_MAX,
} from '../../src/bus/stream-id.js';
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

  // Redis keeps both parts as unsigned 64-bit integers: 0..18446744073709551615.
  const MAX = '18446744073709551615';
  it.each(['0-0', `${MAX}-0`, `0-${MAX}`, `${MAX}-${MAX}`, '00000000000000000001-1'])('accepts %j', (id) => {
    expect(isStreamId(id)).toBe(true);
    expect(parseStreamId(id).ms).toBeLessThanOrEqual(STREAM_ID_PART_MAX);
  });

  it.each([
    `18446744073709551616-0`, // max + 1
    `0-18446744073709551616`,
    '99999999999999999999-0', // 20 digits, far beyond
    '123456789012345678901-0', // 21 digits
    ' 1-0',
    '1-0 ',
    '+1-0',
    '1e3-0',
    '0x10-0',
    '١-٠', // Arabic-Indic digits
    '1-*',
    '$',
  ])('refuses the out-of-range or malformed %j', (bad) => {
    expect(isStreamId(bad)).toBe(false);
    expect(() => parseStreamId(bad)).toThrow(InvalidStreamIdError);
  });
});
