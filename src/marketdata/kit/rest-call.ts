/**
 * One REST call, and the part of reading its reply every venue shares. `restCall` never throws: network
 * trouble and timeouts come back as `retryable`. `classifyHttp` says what the HTTP status alone means
 * (429/418 with `Retry-After` → rate-limited, 5xx → retryable, other non-200 → failed); an adapter
 * checks it first, then reads the body and its own error codes.
 */
import type { RestOutcome, RestResponse } from './venue.js';

/** Longest body kept in a reason or `raw`, characters. */
const RAW_MAX = 500;

export function clipRaw(s: string, max = RAW_MAX): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

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

export type RestCallResult =
  | { readonly kind: 'response'; readonly response: RestResponse }
  /** Network trouble or a timeout: the same call may succeed later. */
  | { readonly kind: 'retryable'; readonly reason: string }
  | { readonly kind: 'aborted' };

export interface RestCallRequest {
  readonly fetch: typeof fetch;
  readonly url: string;
  /** Timeout of the call, body included, ms. */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** One GET with a timeout. */
export async function restCall(req: RestCallRequest): Promise<RestCallResult> {
  if (req.signal.aborted) return { kind: 'aborted' };
  const ac = new AbortController();
  const onAbort = (): void => ac.abort();
  req.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => ac.abort(), req.timeoutMs);
  try {
    const res = await req.fetch(req.url, { signal: ac.signal, headers: { accept: 'application/json' } });
    const body = await res.text();
    return {
      kind: 'response',
      response: { status: res.status, headers: res.headers, body, receivedAt: Date.now() },
    };
  } catch (err) {
    if (req.signal.aborted) return { kind: 'aborted' };
    const what = ac.signal.aborted ? `timed out after ${req.timeoutMs} ms` : describe(err);
    return { kind: 'retryable', reason: what };
  } finally {
    clearTimeout(timer);
    req.signal.removeEventListener('abort', onAbort);
  }
}

/** What the HTTP status says on its own; null for a 200 (the adapter reads the body). */
export function classifyHttp(r: RestResponse): Exclude<RestOutcome<never>, { kind: 'ok' }> | null {
  if (r.status === 429 || r.status === 418) {
    return {
      kind: 'rate-limited',
      retryAfterMs: parseRetryAfter(r.headers.get('retry-after'), r.receivedAt),
      reason: `HTTP ${r.status}: ${clipRaw(r.body)}`,
    };
  }
  if (r.status >= 500) return { kind: 'retryable', reason: `HTTP ${r.status}: ${clipRaw(r.body)}` };
  if (r.status !== 200) return { kind: 'failed', reason: `HTTP ${r.status}`, raw: clipRaw(r.body) };
  return null;
}

/** The body as JSON, or a `failed` outcome naming `what`. */
export function parseJsonBody(
  r: RestResponse,
  what: string,
): { readonly kind: 'json'; readonly json: unknown } | Extract<RestOutcome<never>, { kind: 'failed' }> {
  try {
    return { kind: 'json', json: JSON.parse(r.body) as unknown };
  } catch {
    return { kind: 'failed', reason: `${what} reply is not JSON`, raw: clipRaw(r.body) };
  }
}
