import { describe, expect, it } from 'vitest';
import { classifyHttp, parseRetryAfter } from '../../src/marketdata/kit/rest-call.js';
import type { RestResponse } from '../../src/marketdata/kit/venue.js';

const AT = Date.UTC(2026, 0, 5, 10, 0, 0);

function reply(status: number, body = '', headers: Record<string, string> = {}): RestResponse {
  return { status, headers: new Headers(headers), body, receivedAt: AT };
}

describe('classifyHttp (no sockets)', () => {
  it('429 and 418 are rate limits, with Retry-After in seconds or as a date', () => {
    expect(classifyHttp(reply(429, 'slow down', { 'Retry-After': '3' }))).toEqual({
      kind: 'rate-limited',
      retryAfterMs: 3000,
      reason: 'HTTP 429: slow down',
    });
    expect(
      classifyHttp(reply(418, 'banned', { 'Retry-After': new Date(AT + 120_000).toUTCString() })),
    ).toMatchObject({ kind: 'rate-limited', retryAfterMs: 120_000 });
    expect(classifyHttp(reply(429))).toMatchObject({ kind: 'rate-limited', retryAfterMs: null });
  });

  it('5xx is retryable, any other non-200 failed, a 200 is for the adapter to read', () => {
    expect(classifyHttp(reply(503, 'busy'))).toEqual({ kind: 'retryable', reason: 'HTTP 503: busy' });
    expect(classifyHttp(reply(400, '{"code":-1121}'))).toEqual({
      kind: 'failed',
      reason: 'HTTP 400',
      raw: '{"code":-1121}',
    });
    expect(classifyHttp(reply(404))).toMatchObject({ kind: 'failed' });
    expect(classifyHttp(reply(200, '[]'))).toBeNull();
  });

  it('keeps long bodies short', () => {
    const r = classifyHttp(reply(500, 'x'.repeat(5000)));
    expect(r?.kind === 'retryable' ? r.reason.length : 0).toBeLessThan(600);
  });

  it('reads Retry-After', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    expect(parseRetryAfter(new Date(AT + 30_000).toUTCString(), AT)).toBe(30_000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});
