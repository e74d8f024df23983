/**
 * Bybit v5 public REST: `GET /v5/market/kline` (1m candles, newest first, at most 1,000 rows) and
 * `GET /v5/market/instruments-info` (the symbols of a market), and what their replies mean. Every reply
 * is `{retCode, retMsg, result, retExtInfo, time}`; a non-zero `retCode` comes with HTTP 200. The IP
 * limit answers HTTP 403 "access too frequent"; the API limit answers retCode 10006 with
 * `X-Bapi-Limit-Reset-Timestamp` (docs/venues/bybit.md cites both). Reading never throws.
 */
import { z } from 'zod';
import { candleValuesProblem } from '../../kit/candle-values.js';
import { classifyHttp, clipRaw, parseJsonBody, parseRetryAfter } from '../../kit/rest-call.js';
import type { CandleValues, RestOutcome, RestResponse, RestRow } from '../../kit/venue.js';
import { decimalString, priceString } from './messages.js';

export const KLINE_PATH = '/v5/market/kline';
export const INSTRUMENTS_PATH = '/v5/market/instruments-info';
/** Rows one kline call returns at most. */
export const KLINE_PAGE_LIMIT = 1000;
/** Instruments one linear page lists at most (spot has no paging and lists every symbol). */
export const INSTRUMENTS_PAGE_LIMIT = 1000;
/** How long Bybit bans an IP that broke the HTTP IP limit ("wait for at least 10 minutes"), ms. */
export const IP_BAN_MS = 600_000;

/** retCodes that mean "too many requests": 10006 (API limit, per UID), 10018 (IP limit). */
const RATE_LIMIT_CODES: ReadonlySet<number> = new Set([10006, 10018]);
/** retCodes that mean the server had trouble: 10000 (timeout), 10016 (server error or restarting). */
const RETRY_CODES: ReadonlySet<number> = new Set([10000, 10016]);

export type BybitCategory = 'spot' | 'linear';

export interface KlineQuery {
  readonly category: BybitCategory;
  readonly symbol: string;
  /** First start time wanted, epoch ms (inclusive). */
  readonly start: number;
  /** Last start time wanted, epoch ms (inclusive, as Bybit reads `end`). */
  readonly end: number;
  readonly limit: number;
}

export function klineUrl(restBase: string, q: KlineQuery): string {
  const params = new URLSearchParams({
    category: q.category,
    symbol: q.symbol,
    interval: '1',
    start: String(q.start),
    end: String(q.end),
    limit: String(q.limit),
  });
  return `${restBase}${KLINE_PATH}?${params.toString()}`;
}

export function instrumentsUrl(restBase: string, category: BybitCategory): string {
  const params = new URLSearchParams({ category });
  // Linear lists 500 per page by default and has more than 500 symbols: ask for the largest page.
  if (category === 'linear') params.set('limit', String(INSTRUMENTS_PAGE_LIMIT));
  return `${restBase}${INSTRUMENTS_PATH}?${params.toString()}`;
}

/** `X-Bapi-Limit-Reset-Timestamp` (epoch ms) as ms from the reply's arrival; null when absent. */
function resetIn(headers: Headers, receivedAt: number): number | null {
  const v = headers.get('x-bapi-limit-reset-timestamp');
  if (v === null || !/^\d{10,16}$/.test(v.trim())) return null;
  return Math.max(0, Number(v) - receivedAt);
}

const envelope = z.object({ retCode: z.int(), retMsg: z.string(), result: z.unknown() }).loose();

/**
 * What a Bybit reply means, up to its `result`: the HTTP part (403 IP ban, 429, 5xx), then `retCode`
 * (0 ok, 10006/10018 rate-limited, 10000/10016 retryable, anything else failed).
 */
export function classifyBybitReply(res: RestResponse): RestOutcome<unknown> {
  if (res.status === 403) {
    // "403, access too frequent": the IP limit; Bybit asks for at least 10 minutes off.
    return {
      kind: 'rate-limited',
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), res.receivedAt) ?? IP_BAN_MS,
      reason: `HTTP 403 (IP limit): ${clipRaw(res.body)}`,
    };
  }
  const http = classifyHttp(res);
  if (http) return http;
  const body = parseJsonBody(res, 'Bybit');
  if (body.kind !== 'json') return body;
  const env = envelope.safeParse(body.json);
  if (!env.success) return { kind: 'failed', reason: 'reply has no retCode/retMsg', raw: clipRaw(res.body) };
  const { retCode, retMsg, result } = env.data;
  if (retCode === 0) return { kind: 'ok', value: result };
  const reason = `retCode ${retCode}: ${retMsg}`;
  if (RATE_LIMIT_CODES.has(retCode)) {
    return { kind: 'rate-limited', retryAfterMs: resetIn(res.headers, res.receivedAt), reason };
  }
  if (RETRY_CODES.has(retCode)) return { kind: 'retryable', reason };
  return { kind: 'failed', reason, raw: clipRaw(res.body) };
}

const klineRow = z.tuple(
  [
    z
      .string()
      .regex(/^\d{10,16}$/, 'expected a start time')
      .transform(Number),
    priceString,
    priceString,
    priceString,
    priceString,
    decimalString,
    decimalString,
  ],
  z.unknown(),
);

/** One row `[startTime, open, high, low, close, volume, turnover]` (all strings), checked like a socket kline. */
export function parseKlineRow(row: unknown): RestRow {
  const raw = (): string => clipRaw(JSON.stringify(row) ?? String(row));
  const r = klineRow.safeParse(row);
  if (!r.success) {
    const issue = r.error.issues[0];
    return {
      ok: false,
      reason: `kline row: [${issue?.path.join('.') ?? ''}] ${issue?.message ?? 'invalid'}`,
      raw: raw(),
    };
  }
  const [openTime, open, high, low, close, volumeBase, volumeQuote] = r.data;
  const values: CandleValues = { openTime, open, high, low, close, volumeBase, volumeQuote };
  const problem = candleValuesProblem(values);
  return problem ? { ok: false, reason: `kline row: ${problem}`, raw: raw() } : { ok: true, values };
}

const klineResult = z.object({ list: z.array(z.unknown()).max(KLINE_PAGE_LIMIT) }).loose();

/** A kline reply: its rows in Bybit's order (newest first; the kit sorts). */
export function parseKlineReply(res: RestResponse): RestOutcome<readonly RestRow[]> {
  const outcome = classifyBybitReply(res);
  if (outcome.kind !== 'ok') return outcome;
  const r = klineResult.safeParse(outcome.value);
  if (!r.success) return { kind: 'failed', reason: 'kline reply has no result.list', raw: clipRaw(res.body) };
  return { kind: 'ok', value: r.data.list.map(parseKlineRow) };
}

const instrumentsResult = z
  .object({
    list: z.array(z.object({ symbol: z.string() }).loose()),
    nextPageCursor: z.string().optional(),
  })
  .loose();

/** An instruments-info reply: the symbols it lists. A page cut short by the page size is no full list. */
export function parseInstrumentsReply(res: RestResponse): RestOutcome<ReadonlySet<string>> {
  const outcome = classifyBybitReply(res);
  if (outcome.kind !== 'ok') return outcome;
  const r = instrumentsResult.safeParse(outcome.value);
  if (!r.success)
    return { kind: 'failed', reason: 'instruments reply has no result.list', raw: clipRaw(res.body) };
  const { list, nextPageCursor } = r.data;
  if (list.length >= INSTRUMENTS_PAGE_LIMIT && (nextPageCursor ?? '') !== '') {
    // More symbols than one page: an incomplete list would refuse listed symbols, so none is refused.
    return {
      kind: 'failed',
      reason: `more than ${INSTRUMENTS_PAGE_LIMIT} symbols listed; the list takes one page`,
      raw: clipRaw(res.body),
    };
  }
  return { kind: 'ok', value: new Set(list.map((i) => i.symbol)) };
}
