/**
 * Backfill: fetch closed 1m candles of a range from a venue's REST history (the adapter's, through the
 * kit's history client) under the feed's history-call limit (`max_history_calls_per_min`) and the
 * venue's REST budget shared with every other caller of the process, and write them to the store tagged
 * `source=rest`. Window by window, so memory holds one page.
 */
import { withDefaults } from '../util/defaults.js';
import { InvalidKeyError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { toCandle } from '../marketdata/kit/candle-values.js';
import { HistoryClient } from '../marketdata/kit/history.js';
import { KIT_DEFAULTS, parseVenueInstrument } from '../marketdata/kit/options.js';
import { HistoryLimiter } from '../marketdata/kit/rest-budget.js';
import { RestCaller } from '../marketdata/kit/rest-caller.js';
import type { VenueAdapter, VenueInstrument } from '../marketdata/kit/venue.js';
import type { CandleStore } from './store.js';

const M = 60_000;

export interface BackfillOptions<I extends VenueInstrument = VenueInstrument, U = unknown> {
  /** The venue whose REST history is read. */
  readonly adapter: VenueAdapter<I, U>;
  /** Its resolved URLs (from `market_data.sources.<venue>`). */
  readonly urls: U;
  /** Where the fetched candles are written. */
  readonly store: CandleStore;
  /** The instrument filled, a key of the adapter's venue. */
  readonly instrumentKey: string;
  /**
   * Its market id (the contract's `market_id`).
   * @defaultValue 0
   */
  readonly marketId?: number | undefined;
  /** First open time, epoch ms (rounded down to the minute). */
  readonly fromMs: number;
  /** End, exclusive, epoch ms; never past the last closed minute. */
  readonly toMs: number;
  /**
   * History calls allowed in any 60 s window (config `max_history_calls_per_min`), calls.
   * @defaultValue 30
   */
  readonly maxHistoryCallsPerMin?: number | undefined;
  /**
   * HTTP client for the REST calls.
   * @defaultValue the global `fetch`
   */
  readonly fetch?: typeof fetch | undefined;
  /**
   * Called after each page with candles written so far and the total expected (minutes in range).
   * @defaultValue none (not reported)
   */
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
  /**
   * Stops the backfill when aborted (outcome `aborted`).
   * @defaultValue none (runs to the end)
   */
  readonly signal?: AbortSignal | undefined;
  /** Where retries and skipped rows are logged. */
  readonly log: Logger;
  /**
   * Clock deciding the last closed minute, epoch ms.
   * @defaultValue `Date.now`
   */
  readonly now?: (() => number) | undefined;
}

/** The defaults of {@link BackfillOptions}, applied by `backfill`. */
export const BACKFILL_DEFAULTS = Object.freeze({
  marketId: 0,
  maxHistoryCallsPerMin: KIT_DEFAULTS.maxHistoryCallsPerMin,
  now: Date.now,
} satisfies Partial<BackfillOptions>);

export interface BackfillResult {
  readonly written: number;
  readonly outcome: 'done' | 'failed' | 'aborted';
  readonly reason?: string;
}

export async function backfill<I extends VenueInstrument, U>(
  opts: BackfillOptions<I, U>,
): Promise<BackfillResult> {
  const o = withDefaults(BACKFILL_DEFAULTS, opts);
  const adapter = o.adapter;
  if (!o.instrumentKey.startsWith(`${adapter.venue}:`)) {
    throw new InvalidKeyError(
      'instrument key',
      o.instrumentKey,
      `backfill reads ${adapter.venue}'s REST history: ${adapter.markets.map((m) => `${adapter.venue}:${m}:*`).join(' or ')}`,
    );
  }
  const instrument = parseVenueInstrument(adapter, o.instrumentKey, 'instrument key', o.marketId);
  const now = o.now;
  const from = Math.floor(o.fromMs / M) * M;
  const to = Math.min(Math.ceil(o.toMs / M) * M, Math.floor(now() / M) * M);
  const total = Math.max(0, (to - from) / M);
  const caller = new RestCaller({
    venue: adapter.venue,
    windows: adapter.limits.rest,
    limiter: new HistoryLimiter({ maxCalls: o.maxHistoryCallsPerMin }),
    fetch: o.fetch ?? globalThis.fetch,
    timeoutMs: KIT_DEFAULTS.restTimeoutMs,
    backoff: { baseMs: KIT_DEFAULTS.reconnectBaseMs, maxMs: KIT_DEFAULTS.reconnectMaxMs },
    logger: o.log,
    onBackoff: (throttled, waitMs) => {
      if (throttled) o.log.warn({ waitMs }, 'history call backing off');
    },
  });
  const client = new HistoryClient({
    history: adapter.history,
    urls: o.urls,
    caller,
    now,
    onInvalidRow: (reason) => o.log.warn({ reason }, 'invalid candle row skipped'),
  });
  let written = 0;
  o.onProgress?.(0, total);
  const outcome = await client.fetchClosed(
    instrument,
    { from, toExclusive: to, closedBefore: now() },
    o.signal ?? new AbortController().signal,
    async (candles) => {
      if (candles.length > 0) await o.store.insert(candles.map((v) => toCandle(instrument, v, 'rest')));
      written += candles.length;
      o.onProgress?.(written, total);
      return true;
    },
  );
  return outcome.kind === 'failed'
    ? { written, outcome: 'failed', reason: outcome.reason }
    : { written, outcome: outcome.kind };
}
