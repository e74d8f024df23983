/**
 * History fills: the closed candles of a time range over the adapter's REST history, window by window
 * (`pageMinutes` each, from the start of the range), each window's rows sorted and deduplicated by open
 * time and kept only inside the window. A row the venue marks open (`closed === false`) is dropped, and
 * so is any row whose minute is not closed before `closedBefore`: the still-open minute is never used,
 * whatever the venue says of it. Calls go through `RestCaller` (limiter, shared budget, retries); a
 * reply that will not get better fails the fill.
 *
 * Used by the sequencer (gap fills) and by `history/backfill.ts`.
 */
import type { RestCaller } from './rest-caller.js';
import { MINUTE_MS } from './candle-values.js';
import type { CandleValues, RestRow, VenueHistory, VenueInstrument } from './venue.js';

export interface FillRange {
  /** First open time wanted, epoch ms, minute-aligned. */
  readonly from: number;
  /** Open times below this, epoch ms, minute-aligned. */
  readonly toExclusive: number;
  /** Only candles whose minute has ended by this time count, epoch ms (the market clock's now). */
  readonly closedBefore: number;
}

export type FillOutcome =
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly reason: string; readonly raw: string }
  | { readonly kind: 'aborted' };

export interface HistoryWindow {
  readonly from: number;
  readonly toExclusive: number;
}

/** The windows of `pageMinutes` that cover `[from, toExclusive)`, in order; the last may be shorter. */
export function* historyWindows(
  from: number,
  toExclusive: number,
  pageMinutes: number,
): Generator<HistoryWindow, void, undefined> {
  const step = Math.max(1, Math.floor(pageMinutes)) * MINUTE_MS;
  for (let start = from; start < toExclusive; start += step) {
    yield { from: start, toExclusive: Math.min(start + step, toExclusive) };
  }
}

/**
 * The usable candles of one window's rows, ascending, one per open time (the last row of a minute wins):
 * valid, inside the window, not marked open, and closed before `closedBefore`. `onInvalid` hears of
 * every invalid row.
 */
export function usableRows(
  rows: readonly RestRow[],
  window: HistoryWindow,
  closedBefore: number,
  onInvalid: (reason: string, raw: string) => void,
): CandleValues[] {
  const byOpen = new Map<number, CandleValues>();
  for (const row of rows) {
    if (!row.ok) {
      onInvalid(row.reason, row.raw);
      continue;
    }
    const v = row.values;
    if (v.openTime < window.from || v.openTime >= window.toExclusive) continue;
    if (row.closed === false) continue;
    if (v.openTime + MINUTE_MS > closedBefore) continue; // still open
    byOpen.set(v.openTime, v);
  }
  return [...byOpen.values()].sort((a, b) => a.openTime - b.openTime);
}

export interface HistoryClientOptions<I extends VenueInstrument, U> {
  readonly history: VenueHistory<I, U>;
  readonly urls: U;
  readonly caller: RestCaller;
  /** A row that is not a valid candle; it is skipped. */
  readonly onInvalidRow: (reason: string, raw: string) => void;
  /**
   * Every call made (counted for stats).
   * @defaultValue none (not counted)
   */
  readonly onCall?: ((url: string) => void) | undefined;
  /**
   * Clock handed to the adapter's request (which endpoint serves a range), epoch ms.
   * @defaultValue `Date.now`
   */
  readonly now?: (() => number) | undefined;
}

export class HistoryClient<I extends VenueInstrument, U> {
  constructor(private readonly opts: HistoryClientOptions<I, U>) {}

  /**
   * Fetch the closed candles of `range` in ascending open time, handing each window's to `onPage` before
   * the next is asked for (so memory stays at one page). `onPage` returns false to stop.
   */
  async fetchClosed(
    instrument: I,
    range: FillRange,
    signal: AbortSignal,
    onPage: (candles: readonly CandleValues[]) => Promise<boolean>,
  ): Promise<FillOutcome> {
    const { history, urls, caller } = this.opts;
    const now = this.opts.now ?? Date.now;
    const key = instrument.spec.instrumentKey;
    for (const w of historyWindows(range.from, range.toExclusive, history.pageMinutes)) {
      const req = history.request(instrument, w.from, w.toExclusive, urls, now());
      const page = await caller.call<readonly RestRow[]>(req, (r) => history.parse(r, instrument), signal, {
        onAttempt: this.opts.onCall,
      });
      if (page.kind === 'aborted') return page;
      if (page.kind === 'gave-up') return { kind: 'failed', reason: page.reason, raw: '' };
      if (page.kind === 'failed') return page;
      const candles = usableRows(page.value, w, range.closedBefore, (reason, raw) =>
        this.opts.onInvalidRow(`${key}: ${reason}`, raw),
      );
      if (!(await onPage(candles))) return { kind: 'aborted' };
    }
    return { kind: 'done' };
  }
}
