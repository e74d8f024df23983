/**
 * Binance REST klines: `GET /api/v3/klines` (spot) and `GET /fapi/v1/klines` (USD-M futures), one page
 * per call. Rows are `[openTime,"open","high","low","close","volume",closeTime,"quoteVolume",trades,
 * "takerBase","takerQuote","ignore"]`; Binance also returns the kline still open, so callers keep only
 * rows closed before their clock says now. A call never throws: the outcome says what to do next.
 */
import { z } from 'zod';
import type { KlineValues } from './messages.js';
import { decimalString, epochMs, klineProblem, priceString } from './messages.js';
import type { BinanceMarket } from './options.js';

export const KLINES_PATH: Readonly<Record<BinanceMarket, string>> = {
  spot: '/api/v3/klines',
  futures: '/fapi/v1/klines',
};

/** Rows per call; spot allows 1000 at most (futures 1500). */
export const KLINES_PAGE_LIMIT = 1000;

/** Longest `raw` kept in a failure, characters. */
const RAW_MAX = 500;

export interface KlinesQuery {
  readonly market: BinanceMarket;
  readonly symbol: string;
  /** First open time wanted, epoch ms (inclusive). */
  readonly startTime: number;
  /** Last open time wanted, epoch ms (inclusive, as Binance reads `endTime`). */
  readonly endTime: number;
  readonly limit: number;
}

export function klinesUrl(baseUrl: string, q: KlinesQuery): string {
  const params = new URLSearchParams({
    symbol: q.symbol,
    interval: '1m',
    startTime: String(q.startTime),
    endTime: String(q.endTime),
    limit: String(q.limit),
  });
  return `${baseUrl}${KLINES_PATH[q.market]}?${params.toString()}`;
}

export type KlinePage =
  | { readonly kind: 'ok'; readonly rows: readonly unknown[] }
  /** HTTP 429 (too many requests) or 418 (IP banned for ignoring 429s): wait `retryAfterMs` when given. */
  | {
      readonly kind: 'rate-limited';
      readonly status: number;
      readonly retryAfterMs: number | null;
      readonly reason: string;
    }
  /** Network trouble, timeout or a 5xx: the same call may succeed later. */
  | { readonly kind: 'retryable'; readonly reason: string }
  /** Repeating the call will not help (4xx, a body that is not a kline array). */
  | { readonly kind: 'failed'; readonly reason: string; readonly raw: string }
  | { readonly kind: 'aborted' };

/**
 * `Retry-After` as milliseconds from `nowMs`: delay-seconds (`"120"`) or an HTTP date. Null when
 * absent or unreadable.
 */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at) || !/[a-z]/i.test(v)) return null;
  return Math.max(0, at - nowMs);
}

function clip(s: string): string {
  return s.length > RAW_MAX ? `${s.slice(0, RAW_MAX)}...` : s;
}

export interface FetchKlinePageRequest {
  readonly fetch: typeof fetch;
  readonly url: string;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** One REST call. */
export async function fetchKlinePage(req: FetchKlinePageRequest): Promise<KlinePage> {
  if (req.signal.aborted) return { kind: 'aborted' };
  const ac = new AbortController();
  const onAbort = (): void => ac.abort();
  req.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => ac.abort(), req.timeoutMs);
  try {
    const res = await req.fetch(req.url, { signal: ac.signal, headers: { accept: 'application/json' } });
    const body = await res.text();
    if (res.status === 429 || res.status === 418) {
      return {
        kind: 'rate-limited',
        status: res.status,
        retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
        reason: `HTTP ${res.status}: ${clip(body)}`,
      };
    }
    if (res.status >= 500) return { kind: 'retryable', reason: `HTTP ${res.status}: ${clip(body)}` };
    if (res.status !== 200) return { kind: 'failed', reason: `HTTP ${res.status}`, raw: clip(body) };
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return { kind: 'failed', reason: 'klines reply is not JSON', raw: clip(body) };
    }
    if (!Array.isArray(json))
      return { kind: 'failed', reason: 'klines reply is not an array', raw: clip(body) };
    return { kind: 'ok', rows: json as unknown[] };
  } catch (err) {
    if (req.signal.aborted) return { kind: 'aborted' };
    const what = ac.signal.aborted ? `timed out after ${req.timeoutMs} ms` : describe(err);
    return { kind: 'retryable', reason: what };
  } finally {
    clearTimeout(timer);
    req.signal.removeEventListener('abort', onAbort);
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

const klineRow = z.tuple(
  [epochMs, priceString, priceString, priceString, priceString, decimalString, epochMs, decimalString],
  z.unknown(),
);

export type KlineRow =
  | { readonly ok: true; readonly kline: KlineValues }
  | { readonly ok: false; readonly reason: string; readonly raw: string };

/** One row of a klines reply, checked like a socket kline. */
export function parseKlineRow(row: unknown): KlineRow {
  const r = klineRow.safeParse(row);
  const raw = (): string => clip(JSON.stringify(row) ?? String(row));
  if (!r.success) {
    const issue = r.error.issues[0];
    return {
      ok: false,
      reason: `kline row: [${issue?.path.join('.') ?? ''}] ${issue?.message ?? 'invalid'}`,
      raw: raw(),
    };
  }
  const [openTime, open, high, low, close, volume, closeTime, quoteVolume] = r.data;
  const kline: KlineValues = { openTime, closeTime, open, high, low, close, volume, quoteVolume };
  const problem = klineProblem(kline);
  return problem ? { ok: false, reason: `kline row: ${problem}`, raw: raw() } : { ok: true, kline };
}
