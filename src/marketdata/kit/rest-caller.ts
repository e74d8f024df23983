/**
 * REST calls of one source (or one backfill) under its limiter and the venue's shared budget, retried:
 * a rate-limited reply blocks the budget for `Retry-After` (or the next backoff step when the venue
 * gives no time) and the call waits its turn again; network trouble, timeouts and 5xx are retried with
 * exponential backoff (reset per call) until they succeed, the attempts run out, or the signal aborts;
 * a reply that will not get better ends the call as `failed`.
 */
import { Backoff, type BackoffOptions } from '../../util/backoff.js';
import { sleep } from '../../util/sleep.js';
import type { Logger } from '../../util/log.js';
import { restBudgetFor, type HistoryLimiter } from './rest-budget.js';
import { restCall, type RestCallResult } from './rest-call.js';
import type { Taken } from './windows.js';
import type { RateWindow, RestOutcome, RestRequest, RestResponse } from './venue.js';

export interface RestCallerOptions {
  /** Venue name, for the shared budget and logs. */
  readonly venue: string;
  /** The venue's REST windows (`VenueLimits.rest`). */
  readonly windows: readonly RateWindow[];
  /** The caller's own cap of calls per window. */
  readonly limiter: HistoryLimiter;
  readonly fetch: typeof fetch;
  /** Timeout of one call, ms. */
  readonly timeoutMs: number;
  /** Retry delays after network trouble or a 5xx; also the wait after a rate limit without a time. */
  readonly backoff: BackoffOptions;
  readonly logger: Logger;
  /** A retry wait after an error starts (true, its length), or no call is retrying any more (false, 0). */
  readonly onBackoff: (throttled: boolean, waitMs: number) => void;
}

/** How a call ended after its retries. */
export type FinalOutcome<T> =
  | Extract<RestOutcome<T>, { kind: 'ok' | 'failed' }>
  /** Still retryable after `maxAttempts`. */
  | { readonly kind: 'gave-up'; readonly reason: string }
  | { readonly kind: 'aborted' };

export class RestCaller {
  /** Calls currently waiting to retry after an error. */
  private backingOff = 0;

  constructor(private readonly opts: RestCallerOptions) {}

  /**
   * Make `req` until it is answered for good. `maxAttempts` bounds the answers that are retryable or
   * rate-limited (default: no bound). `onAttempt` is told of every call made.
   */
  async call<T>(
    req: RestRequest,
    parse: (r: RestResponse) => RestOutcome<T>,
    signal: AbortSignal,
    extra: {
      readonly maxAttempts?: number | undefined;
      readonly onAttempt?: ((url: string) => void) | undefined;
    } = {},
  ): Promise<FinalOutcome<T>> {
    const o = this.opts;
    const budget = restBudgetFor(o.venue, req.url, o.windows);
    const backoff = new Backoff(o.backoff);
    let backingOff = false;
    let attempts = 0;
    try {
      for (;;) {
        let taken: Taken | null = null;
        const cost = { budget, weight: req.weight, taken: (t: Taken) => (taken = t) };
        if (!(await o.limiter.acquire(signal, cost))) return { kind: 'aborted' };
        attempts += 1;
        extra.onAttempt?.(req.url);
        let got: RestCallResult;
        try {
          got = await restCall({ fetch: o.fetch, url: req.url, timeoutMs: o.timeoutMs, signal });
        } finally {
          // The venue counted the call between its start and now.
          (taken as Taken | null)?.settle(Date.now());
        }
        if (got.kind === 'aborted') return got;
        const outcome: RestOutcome<T> = got.kind === 'retryable' ? got : parse(got.response);
        if (outcome.kind === 'ok' || outcome.kind === 'failed') return outcome;
        const last = extra.maxAttempts !== undefined && attempts >= extra.maxAttempts;
        if (outcome.kind === 'rate-limited') {
          const wait = outcome.retryAfterMs ?? backoff.next();
          o.logger.warn(
            { source: o.venue, url: req.url, reason: outcome.reason, waitMs: wait },
            `${o.venue} REST call rate-limited`,
          );
          o.limiter.blockFor(wait, budget);
          if (last) return { kind: 'gave-up', reason: outcome.reason };
          continue;
        }
        if (last) return { kind: 'gave-up', reason: outcome.reason };
        const wait = backoff.next();
        o.logger.warn(
          { source: o.venue, url: req.url, reason: outcome.reason, waitMs: wait },
          `${o.venue} REST call failed; retrying`,
        );
        if (!backingOff) this.backingOff += 1;
        backingOff = true;
        o.onBackoff(true, wait);
        await sleep(wait, signal);
        if (signal.aborted) return { kind: 'aborted' };
      }
    } finally {
      if (backingOff) {
        this.backingOff -= 1;
        if (this.backingOff === 0) o.onBackoff(false, 0);
      }
    }
  }
}
