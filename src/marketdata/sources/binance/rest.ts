/**
 * Binance REST: klines (`GET /api/v3/klines` spot, `GET /fapi/v1/klines` USD-M futures), one page per
 * call, and the symbol lists (`GET /api/v3/exchangeInfo`, `GET /fapi/v1/exchangeInfo`), with the
 * weight Binance charges for each (docs/venues/binance.md). Kline rows are
 * `[openTime,"open","high","low","close","volume",closeTime,"quoteVolume",trades,"takerBase",
 * "takerQuote","ignore"]`; Binance also returns the kline still open, which the kit drops (it keeps only
 * minutes closed before its clock says now). Replies are read into the kit's outcomes; nothing throws.
 */
import { z } from 'zod';
import { classifyHttp, clipRaw, parseJsonBody } from '../../kit/rest-call.js';
import type { RestOutcome, RestRequest, RestResponse, RestRow } from '../../kit/venue.js';
import type { KlineValues } from './messages.js';
import { decimalString, epochMs, klineProblem, klineValues, priceString } from './messages.js';
import type { BinanceMarket } from './options.js';

export const KLINES_PATH: Readonly<Record<BinanceMarket, string>> = {
  spot: '/api/v3/klines',
  futures: '/fapi/v1/klines',
};

/** Rows per call; spot allows 1000 at most (futures 1500). */
export const KLINES_PAGE_LIMIT = 1000;

export const EXCHANGE_INFO_PATH: Readonly<Record<BinanceMarket, string>> = {
  spot: '/api/v3/exchangeInfo',
  futures: '/fapi/v1/exchangeInfo',
};

/** Request weight of `GET /api/v3/exchangeInfo` (spot) and `GET /fapi/v1/exchangeInfo` (futures). */
const EXCHANGE_INFO_WEIGHT: Readonly<Record<BinanceMarket, number>> = { spot: 20, futures: 1 };

/**
 * Request weight of one klines call: spot charges 2 whatever the limit; USD-M futures charges by
 * `limit` (under 100: 1, under 500: 2, up to 1000: 5, above: 10).
 */
export function klinesWeight(market: BinanceMarket, limit: number): number {
  if (market === 'spot') return 2;
  if (limit < 100) return 1;
  if (limit < 500) return 2;
  if (limit <= 1000) return 5;
  return 10;
}

function clip(s: string): string {
  return clipRaw(s);
}

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

const klineRow = z.tuple(
  [epochMs, priceString, priceString, priceString, priceString, decimalString, epochMs, decimalString],
  z.unknown(),
);

export type KlineRow =
  | { readonly ok: true; readonly kline: KlineValues }
  | { readonly ok: false; readonly reason: string; readonly raw: string };

/** The klines call for open times in `[from, toExclusive)` of `market`, with its weight. */
export function klinesRequest(
  baseUrl: string,
  market: BinanceMarket,
  symbol: string,
  from: number,
  toExclusive: number,
): RestRequest {
  const limit = Math.ceil((toExclusive - from) / 60_000);
  return {
    url: klinesUrl(baseUrl, { market, symbol, startTime: from, endTime: toExclusive - 1, limit }),
    weight: klinesWeight(market, limit),
  };
}

/** A klines reply as rows for the kit. */
export function parseKlinesReply(r: RestResponse): RestOutcome<readonly RestRow[]> {
  const http = classifyHttp(r);
  if (http) return http;
  const body = parseJsonBody(r, 'klines');
  if (body.kind === 'failed') return body;
  if (!Array.isArray(body.json)) {
    return { kind: 'failed', reason: 'klines reply is not an array', raw: clip(r.body) };
  }
  const rows = (body.json as unknown[]).map((row): RestRow => {
    const k = parseKlineRow(row);
    return k.ok ? { ok: true, values: klineValues(k.kline) } : k;
  });
  return { kind: 'ok', value: rows };
}

/** The exchangeInfo call that lists `market`'s symbols, with its weight. */
export function exchangeInfoRequest(baseUrl: string, market: BinanceMarket): RestRequest {
  return { url: `${baseUrl}${EXCHANGE_INFO_PATH[market]}`, weight: EXCHANGE_INFO_WEIGHT[market] };
}

const exchangeInfo = z.object({ symbols: z.array(z.object({ symbol: z.string() }).loose()) }).loose();

/** An exchangeInfo reply as the set of symbols it lists (whatever their trading status). */
export function parseExchangeInfo(r: RestResponse): RestOutcome<ReadonlySet<string>> {
  const http = classifyHttp(r);
  if (http) return http;
  const body = parseJsonBody(r, 'exchangeInfo');
  if (body.kind === 'failed') return body;
  const info = exchangeInfo.safeParse(body.json);
  if (!info.success) {
    return { kind: 'failed', reason: 'exchangeInfo reply has no symbols list', raw: clip(r.body) };
  }
  return { kind: 'ok', value: new Set(info.data.symbols.map((s) => s.symbol)) };
}

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
