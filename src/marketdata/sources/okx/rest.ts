/**
 * OKX v5 REST (docs/venues/okx.md): the `{"code","msg","data"}` envelope every reply carries, the candle
 * endpoints `GET /api/v5/market/candles` (the latest 1,440 minutes) and
 * `GET /api/v5/market/history-candles` (older ones), and the symbol list
 * `GET /api/v5/public/instruments?instType=SPOT|SWAP`. Reading a reply never throws: the outcome says
 * what the kit does next.
 */
import { z } from 'zod';
import type { RestOutcome, RestResponse, RestRow } from '../../kit/venue.js';
import type { OkxMarket } from './instruments.js';
import { instType } from './instruments.js';
import { issues, parseCandleRow } from './messages.js';
import { MINUTE_MS } from '../../kit/candle-values.js';
import { clipRaw as clip, parseRetryAfter } from '../../kit/rest-call.js';

export const CANDLES_PATH = '/api/v5/market/candles';
export const HISTORY_CANDLES_PATH = '/api/v5/market/history-candles';
export const INSTRUMENTS_PATH = '/api/v5/public/instruments';

/**
 * Minutes `candles` reaches back: "the latest 1,440 data entries", the open minute included. A range
 * starting earlier than this many minutes before now goes to `history-candles`; the margin keeps a
 * range that ages while it waits for its turn on the right side.
 */
export const CANDLES_REACH_MINUTES = 1_440;
export const CANDLES_REACH_MARGIN_MINUTES = 60;

/**
 * Rows per call: `candles` allows 300, `history-candles` 100 (300 in later revisions of the page); one
 * page size serves both, so the kit's pages never depend on which endpoint answers them.
 */
export const CANDLE_PAGE_LIMIT = 100;

/** OKX's rate-limit code ("Rate limit reached..."; HTTP 429 "Too Many Requests" or 200). */
export const CODE_RATE_LIMITED = '50011';
/**
 * Codes that say "try again later": 50001 service temporarily unavailable (503), 50004 endpoint request
 * timeout, 50013 systems are busy (429), 50026 system error (500).
 */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(['50001', '50004', '50013', '50026']);

/**
 * OKX counts its REST limits per 2 s window (on arrival; the kit counts a call until its answer, so the
 * windows hold at OKX's end). OKX sends no `Retry-After`: after a 50011 one whole window frees the
 * budget, so that is how long the kit waits when no header says otherwise.
 */
export const RATE_WINDOW_MS = 2_000;

/** Which endpoint serves the minutes from `from` on at `nowMs`. */
export function candlesPathFor(from: number, nowMs: number): string {
  const current = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS;
  const oldestRecent = current - (CANDLES_REACH_MINUTES - 1 - CANDLES_REACH_MARGIN_MINUTES) * MINUTE_MS;
  return from >= oldestRecent ? CANDLES_PATH : HISTORY_CANDLES_PATH;
}

/**
 * The call for the minutes with open times in `[from, toExclusive)`. OKX's bounds are exclusive and
 * name open times: `after` returns rows older than it, `before` rows newer than it. So
 * `after=toExclusive` and `before=from-1`, and `limit` the number of minutes, at most a page.
 */
export function candlesUrl(
  restUrl: string,
  instId: string,
  from: number,
  toExclusive: number,
  nowMs: number,
): string {
  const minutes = Math.max(1, Math.ceil((toExclusive - from) / MINUTE_MS));
  const params = new URLSearchParams({
    instId,
    bar: '1m',
    after: String(toExclusive),
    before: String(from - 1),
    limit: String(Math.min(minutes, CANDLE_PAGE_LIMIT)),
  });
  return `${restUrl}${candlesPathFor(from, nowMs)}?${params.toString()}`;
}

export function instrumentsUrl(restUrl: string, market: string): string {
  return `${restUrl}${INSTRUMENTS_PATH}?instType=${instType(market)}`;
}

const envelope = z.object({ code: z.string().max(16), msg: z.string().max(2000), data: z.unknown() }).loose();

/**
 * The part of a reply every OKX endpoint shares: the envelope's code first (50011 is the rate limit
 * whatever the status), then the HTTP status; `data` when code is "0".
 */
export function readEnvelope(res: RestResponse): RestOutcome<unknown> {
  let json: unknown = undefined;
  try {
    json = JSON.parse(res.body);
  } catch {
    // Not JSON: the status decides below.
  }
  const env = envelope.safeParse(json);
  const reason = env.success
    ? `HTTP ${res.status}, code ${env.data.code}: ${env.data.msg}`
    : `HTTP ${res.status}: ${clip(res.body)}`;
  const code = env.success ? env.data.code : null;
  const rateLimited = (): RestOutcome<unknown> => ({
    kind: 'rate-limited',
    retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), res.receivedAt) ?? RATE_WINDOW_MS,
    reason,
  });
  if (code === CODE_RATE_LIMITED) return rateLimited();
  if (code !== null && RETRYABLE_CODES.has(code)) return { kind: 'retryable', reason };
  if (res.status === 429) return rateLimited();
  if (res.status >= 500) return { kind: 'retryable', reason };
  if (!env.success)
    return { kind: 'failed', reason: `not an OKX reply: ${issues(env.error)}`, raw: clip(res.body) };
  if (res.status !== 200 || env.data.code !== '0') return { kind: 'failed', reason, raw: clip(res.body) };
  return { kind: 'ok', value: env.data.data };
}

/** A candle page of `market`, newest first as OKX sends it (the kit sorts). */
export function parseCandlesReply(res: RestResponse, market: OkxMarket): RestOutcome<readonly RestRow[]> {
  const out = readEnvelope(res);
  if (out.kind !== 'ok') return out;
  if (!Array.isArray(out.value))
    return { kind: 'failed', reason: 'candles data is not an array', raw: clip(res.body) };
  return {
    kind: 'ok',
    value: out.value.map((row: unknown): RestRow => {
      const r = parseCandleRow(row, market);
      if (r.ok) return { ok: true, values: r.values, closed: r.closed };
      return { ok: false, reason: r.reason, raw: clip(JSON.stringify(row) ?? String(row)) };
    }),
  };
}

const instrumentsData = z.array(z.object({ instId: z.string().min(1).max(64) }).loose());

/** The instIds `public/instruments` lists (every state: live, suspend, preopen, test). */
export function parseInstrumentsReply(res: RestResponse): RestOutcome<ReadonlySet<string>> {
  const out = readEnvelope(res);
  if (out.kind !== 'ok') return out;
  const r = instrumentsData.safeParse(out.value);
  if (!r.success) return { kind: 'failed', reason: `instruments: ${issues(r.error)}`, raw: clip(res.body) };
  return { kind: 'ok', value: new Set(r.data.map((i) => i.instId)) };
}
