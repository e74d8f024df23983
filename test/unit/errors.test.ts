/**
 * The one error registry and its three tables: every code has an HTTP answer, a WebSocket close code
 * and a CLI exit code, and the tables name nothing else; remote codes outside the registry fall back
 * to REMOTE_CODE_UNKNOWN.
 */
import { describe, expect, it } from 'vitest';
import { HTTP_ERRORS } from '../../src/api/error-status.js';
import { WS_CLOSE_CODES } from '../../src/api/live/close-codes.js';
import { ProtocolError, liveWireCode } from '../../src/api/live/protocol.js';
import { ApiError } from '../../src/api/http-errors.js';
import { TelegramLoginError } from '../../src/api/auth/telegram-login.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { CommandFailedError } from '../../src/commands/errors.js';
import { ERROR_CODES, MarketbusError, errorCodeOf, isErrorCode } from '../../src/util/errors.js';

const codes = Object.keys(ERROR_CODES).sort();

describe('error registry', () => {
  it('every code has a one-line description', () => {
    for (const [code, doc] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(doc.length, code).toBeGreaterThan(10);
      expect(doc, code).not.toContain('\n');
    }
  });

  it('each table maps exactly the registry codes', () => {
    expect(Object.keys(HTTP_ERRORS).sort()).toEqual(codes);
    expect(Object.keys(WS_CLOSE_CODES).sort()).toEqual(codes);
    expect(Object.keys(EXIT_CODES).sort()).toEqual(codes);
    for (const c of codes) {
      const http = HTTP_ERRORS[c as keyof typeof HTTP_ERRORS];
      expect(http.status, c).toBeGreaterThanOrEqual(400);
      expect(http.status, c).toBeLessThan(600);
      expect(http.code, c).toMatch(/^[a-z_]+$/);
      const close = WS_CLOSE_CODES[c as keyof typeof WS_CLOSE_CODES];
      expect(close, c).toBeGreaterThanOrEqual(1000);
      expect(close, c).toBeLessThan(5000);
      expect([1, 2], c).toContain(EXIT_CODES[c as keyof typeof EXIT_CODES]);
    }
  });

  it('keeps the answers clients have seen before the registry', () => {
    expect(HTTP_ERRORS.NOT_FOUND).toEqual({ status: 404, code: 'not_found' });
    expect(HTTP_ERRORS.STRATEGY_INVALID).toEqual({ status: 400, code: 'strategy_invalid' });
    expect(HTTP_ERRORS.REDIS_UNAVAILABLE).toMatchObject({ status: 503, code: 'unavailable' });
    expect(HTTP_ERRORS.TELEGRAM_MALFORMED).toEqual({ status: 400, code: 'telegram_malformed' });
    expect(HTTP_ERRORS.TELEGRAM_STALE).toEqual({ status: 401, code: 'telegram_stale' });
    expect(HTTP_ERRORS.DECODE_FAILED).toMatchObject({ status: 500, code: 'internal' });
    expect(WS_CLOSE_CODES.CLOSED).toBe(1001);
    expect(WS_CLOSE_CODES.TOO_MANY_MESSAGES).toBe(1008);
    expect(WS_CLOSE_CODES.CLIENT_TOO_SLOW).toBe(1013);
    expect(EXIT_CODES.CONFIG_INVALID).toBe(2);
    expect(EXIT_CODES.INVALID_KEY).toBe(2);
    expect(EXIT_CODES.INVALID_RANGE).toBe(2);
    expect(EXIT_CODES.REDIS_UNAVAILABLE).toBe(1);
    expect(EXIT_CODES.INTERNAL).toBe(1);
  });

  it('API, live and Telegram errors are MarketbusErrors with registry codes', () => {
    const api = new ApiError('BAD_QUERY', 'limit: too big');
    expect(api).toBeInstanceOf(MarketbusError);
    expect(errorCodeOf(api)).toBe('BAD_QUERY');
    const live = new ProtocolError('INVALID_FROM', 'from: bad', 7);
    expect(live).toBeInstanceOf(MarketbusError);
    expect(liveWireCode(live.code)).toBe('invalid_from');
    const tg = new TelegramLoginError('bad_hash', 'not signed by this bot');
    expect(tg.code).toBe('TELEGRAM_BAD_HASH');
    expect(HTTP_ERRORS[tg.code]).toEqual({ status: 401, code: 'telegram_bad_hash' });
    expect(errorCodeOf(new Error('x'))).toBe('INTERNAL');
  });

  it('a remote code outside the registry becomes REMOTE_CODE_UNKNOWN, keeping the sent text', () => {
    const known = new CommandFailedError('svc', 'a.b', 'c1', { code: 'NOT_FOUND', message: 'no a' });
    expect(known.remoteCode).toBe('NOT_FOUND');
    expect(known.remoteCodeText).toBe('NOT_FOUND');
    const foreign = new CommandFailedError('svc', 'a.b', 'c2', { code: 'E_PYTHON_SPECIFIC', message: 'x' });
    expect(foreign.remoteCode).toBe('REMOTE_CODE_UNKNOWN');
    expect(foreign.remoteCodeText).toBe('E_PYTHON_SPECIFIC');
    expect(foreign.message).toContain('[E_PYTHON_SPECIFIC]');
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('TIMEOUT')).toBe(true);
  });
});
