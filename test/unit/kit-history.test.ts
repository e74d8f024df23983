import { describe, expect, it } from 'vitest';
import { historyWindows, usableRows } from '../../src/marketdata/kit/history.js';
import type { CandleValues, RestRow } from '../../src/marketdata/kit/venue.js';

const M = 60_000;
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

function values(openTime: number, close = 100): CandleValues {
  return { openTime, open: 100, high: 101, low: 99, close, volumeBase: 1, volumeQuote: 100 };
}

function row(openTime: number, closed?: boolean, close = 100): RestRow {
  return closed === undefined
    ? { ok: true, values: values(openTime, close) }
    : { ok: true, values: values(openTime, close), closed };
}

describe('history window planning (no sockets)', () => {
  it('fixed windows of pageMinutes from the start of the range; the last one shorter', () => {
    expect([...historyWindows(T0, T0 + 7 * M, 3)]).toEqual([
      { from: T0, toExclusive: T0 + 3 * M },
      { from: T0 + 3 * M, toExclusive: T0 + 6 * M },
      { from: T0 + 6 * M, toExclusive: T0 + 7 * M },
    ]);
    expect([...historyWindows(T0, T0 + 3 * M, 1000)]).toEqual([{ from: T0, toExclusive: T0 + 3 * M }]);
    expect([...historyWindows(T0, T0, 1000)]).toEqual([]);
  });
});

describe('usable rows of a window (no sockets)', () => {
  const w = { from: T0, toExclusive: T0 + 5 * M };

  it('sorted, one per minute (the last row wins), only inside the window', () => {
    const rows = [row(T0 + 2 * M), row(T0 - M), row(T0), row(T0 + 2 * M, undefined, 100.5), row(T0 + 5 * M)];
    const got = usableRows(rows, w, T0 + 60 * M, () => undefined);
    expect(got.map((v) => v.openTime)).toEqual([T0, T0 + 2 * M]);
    expect(got[1]?.close).toBe(100.5);
  });

  it('never the still-open minute, whatever the venue says of it; rows marked open are dropped', () => {
    const now = T0 + 3 * M + 20_000; // 10:03 is open
    const rows = [row(T0), row(T0 + M, false), row(T0 + 2 * M, true), row(T0 + 3 * M, true), row(T0 + 3 * M)];
    expect(usableRows(rows, w, now, () => undefined).map((v) => v.openTime)).toEqual([T0, T0 + 2 * M]);
    // The minute that ends exactly at closedBefore is closed.
    expect(usableRows([row(T0 + 2 * M)], w, T0 + 3 * M, () => undefined)).toHaveLength(1);
  });

  it('reports invalid rows and skips them', () => {
    const seen: string[] = [];
    const got = usableRows(
      [{ ok: false, reason: 'bad row', raw: '[1]' }, row(T0)],
      w,
      T0 + 60 * M,
      (reason, raw) => seen.push(`${reason} ${raw}`),
    );
    expect(seen).toEqual(['bad row [1]']);
    expect(got).toHaveLength(1);
  });
});
