/**
 * History fills: the closed klines of a time range from REST, page by page, under the history-call
 * limiter. A 429/418 blocks the limiter for `Retry-After`; network trouble and 5xx are retried with
 * exponential backoff (5 s doubling to 300 s, reset after an answered call) until they succeed
 * or the signal aborts; a reply that will not get better (4xx, not a kline array) fails the fill.
 */
import { Backoff, type BackoffOptions } from '../../../util/backoff.js';
import { sleep } from '../../../util/sleep.js';
import type { Logger } from '../../../util/log.js';
import type { HistoryLimiter } from './history-limiter.js';
import type { KlineValues } from './messages.js';
import { MINUTE_MS } from './messages.js';
import type { BinanceInstrument, BinanceMarket } from './options.js';
import { fetchKlinePage, klinesUrl, KLINES_PAGE_LIMIT, parseKlineRow, type KlinePage } from './rest.js';

export interface HistoryClientOptions {
  /** Shared limit of REST calls per window. */
  readonly limiter: HistoryLimiter;
  /** HTTP client for the REST calls. */
  readonly fetch: typeof fetch;
  /** REST base URL per market. */
  readonly restUrl: Readonly<Record<BinanceMarket, string>>;
  /** Timeout of one REST call, ms. */
  readonly timeoutMs: number;
  /** Retry delays after network trouble or a 5xx; also the wait after a 429/418 without `Retry-After`. */
  readonly backoff: BackoffOptions;
  /** Where retries and skipped rows are logged. */
  readonly logger: Logger;
  /** A retry wait after an error starts (true, its length), or no call is retrying any more (false, 0). */
  readonly onBackoff: (throttled: boolean, waitMs: number) => void;
  /** A row that is not a valid kline; it is skipped. */
  readonly onInvalidRow: (reason: string, raw: string) => void;
  /**
   * Every call made (counted for stats).
   * @defaultValue none (not counted)
   */
  readonly onCall?: (url: string) => void;
}

export interface FillRange {
  /** First open time wanted, epoch ms, minute-aligned. */
  readonly from: number;
  /** Open times below this, epoch ms, minute-aligned. */
  readonly toExclusive: number;
  /** Only klines whose close time is before this count (Binance also returns the open one). */
  readonly closedBefore: number;
}

export type FillOutcome =
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly reason: string; readonly raw: string }
  | { readonly kind: 'aborted' };

/** What a call ends with after its retries. */
type FinalPage = Extract<KlinePage, { kind: 'ok' | 'failed' | 'aborted' }>;

export class HistoryClient {
  /** Calls currently waiting to retry after an error. */
  private backingOff = 0;

  constructor(private readonly opts: HistoryClientOptions) {}

  /**
   * Fetch the closed klines of `range` in ascending open time, handing each page to `onPage` before the
   * next is asked for (so memory stays at one page). `onPage` returns false to stop.
   */
  async fetchClosed(
    instrument: BinanceInstrument,
    range: FillRange,
    signal: AbortSignal,
    onPage: (klines: readonly KlineValues[]) => Promise<boolean>,
  ): Promise<FillOutcome> {
    let cursor = range.from;
    while (cursor < range.toExclusive) {
      const limit = Math.min(KLINES_PAGE_LIMIT, Math.ceil((range.toExclusive - cursor) / MINUTE_MS));
      const url = klinesUrl(this.opts.restUrl[instrument.market], {
        market: instrument.market,
        symbol: instrument.symbol,
        startTime: cursor,
        endTime: range.toExclusive - 1,
        limit,
      });
      const page = await this.call(url, signal);
      if (page.kind !== 'ok') return page;
      const byOpen = new Map<number, KlineValues>();
      let lastOpen = -1;
      for (const row of page.rows) {
        const r = parseKlineRow(row);
        if (!r.ok) {
          this.opts.onInvalidRow(`${instrument.spec.instrumentKey}: ${r.reason}`, r.raw);
          continue;
        }
        const k = r.kline;
        lastOpen = Math.max(lastOpen, k.openTime);
        if (k.openTime < cursor || k.openTime >= range.toExclusive) continue;
        if (k.closeTime >= range.closedBefore) continue; // still open
        byOpen.set(k.openTime, k);
      }
      const klines = [...byOpen.values()].sort((a, b) => a.openTime - b.openTime);
      if (!(await onPage(klines))) return { kind: 'aborted' };
      if (page.rows.length < limit || lastOpen < cursor) break;
      cursor = lastOpen + MINUTE_MS;
    }
    return { kind: 'done' };
  }

  /** One page, retried until it is answered, fails for good, or the signal aborts. */
  private async call(url: string, signal: AbortSignal): Promise<FinalPage> {
    const backoff = new Backoff(this.opts.backoff);
    let backingOff = false;
    try {
      for (;;) {
        if (!(await this.opts.limiter.acquire(signal))) return { kind: 'aborted' };
        this.opts.onCall?.(url);
        const page = await fetchKlinePage({
          fetch: this.opts.fetch,
          url,
          timeoutMs: this.opts.timeoutMs,
          signal,
        });
        switch (page.kind) {
          case 'rate-limited': {
            const wait = page.retryAfterMs ?? backoff.next();
            this.opts.logger.warn(
              { url, status: page.status, waitMs: wait },
              'binance history call rate-limited',
            );
            this.opts.limiter.blockFor(wait);
            continue;
          }
          case 'retryable': {
            const wait = backoff.next();
            this.opts.logger.warn(
              { url, reason: page.reason, waitMs: wait },
              'binance history call failed; retrying',
            );
            if (!backingOff) this.backingOff += 1;
            backingOff = true;
            this.opts.onBackoff(true, wait);
            await sleep(wait, signal);
            continue;
          }
          default:
            return page;
        }
      }
    } finally {
      if (backingOff) {
        this.backingOff -= 1;
        if (this.backingOff === 0) this.opts.onBackoff(false, 0);
      }
    }
  }
}
