/**
 * Backfill: fetch closed 1m candles of a range from the source's REST history (Binance klines) under
 * the feed's history-call limit (`max_history_calls_per_min`) and write them to the store tagged
 * `source=rest`. Page by page, so memory holds one page.
 */
import { withDefaults } from '../util/defaults.js';
import { InvalidKeyError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { HistoryClient } from '../marketdata/sources/binance/history.js';
import { HistoryLimiter } from '../marketdata/sources/binance/history-limiter.js';
import { toCandle } from '../marketdata/sources/binance/normalize.js';
import { resolveBinanceOptions, type BinanceSourceOptions } from '../marketdata/sources/binance/options.js';
import type { CandleStore } from './store.js';

const M = 60_000;

export interface BackfillOptions {
  /** Where the fetched candles are written. */
  readonly store: CandleStore;
  /** The instrument filled, a `binance:spot:*` or `binance:futures:*` key. */
  readonly instrumentKey: string;
  /** First open time, epoch ms (rounded down to the minute). */
  readonly fromMs: number;
  /** End, exclusive, epoch ms; never past the last closed minute. */
  readonly toMs: number;
  /** REST base URLs and the history-call limit, as the feed has them (defaults: `BINANCE_DEFAULTS`). */
  readonly binance: Pick<
    BinanceSourceOptions,
    'restUrl' | 'futuresRestUrl' | 'maxHistoryCallsPerMin' | 'fetch' | 'marketIds'
  >;
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
  now: Date.now,
} satisfies Partial<BackfillOptions>);

export interface BackfillResult {
  readonly written: number;
  readonly outcome: 'done' | 'failed' | 'aborted';
  readonly reason?: string;
}

export async function backfill(opts: BackfillOptions): Promise<BackfillResult> {
  const o = withDefaults(BACKFILL_DEFAULTS, opts);
  if (!o.instrumentKey.startsWith('binance:')) {
    throw new InvalidKeyError(
      'instrument key',
      o.instrumentKey,
      'backfill needs a source with REST history: binance:spot:* or binance:futures:*',
    );
  }
  const resolved = resolveBinanceOptions({ ...o.binance, instruments: [o.instrumentKey], logger: o.log });
  const instrument = resolved.instruments[0];
  if (!instrument)
    throw new InvalidKeyError('instrument key', o.instrumentKey, 'not served by the binance source');
  const now = o.now;
  const from = Math.floor(o.fromMs / M) * M;
  const to = Math.min(Math.ceil(o.toMs / M) * M, Math.floor(now() / M) * M);
  const total = Math.max(0, (to - from) / M);
  const client = new HistoryClient({
    limiter: new HistoryLimiter({ maxCalls: resolved.maxHistoryCallsPerMin }),
    fetch: resolved.fetch,
    restUrl: resolved.restUrl,
    timeoutMs: resolved.restTimeoutMs,
    backoff: { baseMs: resolved.reconnectBaseMs, maxMs: resolved.reconnectMaxMs },
    logger: o.log,
    onBackoff: (throttled, waitMs) => {
      if (throttled) o.log.warn({ waitMs }, 'history call backing off');
    },
    onInvalidRow: (reason) => o.log.warn({ reason }, 'invalid kline row skipped'),
  });
  let written = 0;
  o.onProgress?.(0, total);
  const outcome = await client.fetchClosed(
    instrument,
    { from, toExclusive: to, closedBefore: now() },
    o.signal ?? new AbortController().signal,
    async (klines) => {
      if (klines.length > 0) await o.store.insert(klines.map((k) => toCandle(instrument, k, 'rest')));
      written += klines.length;
      o.onProgress?.(written, total);
      return true;
    },
  );
  return outcome.kind === 'failed'
    ? { written, outcome: 'failed', reason: outcome.reason }
    : { written, outcome: outcome.kind };
}
