/**
 * The HTTP answer of every registry code: the status and the `code` of the JSON error body
 * `{ "error": "<message>", "code": "<code>" }`. The body codes are the API's public contract (lower
 * case, some older than the registry: every dependency failure is `unavailable`); the registry code
 * itself is not sent. Codes that are not a client's fault, or that the API never raises, are 500
 * `internal` with the message hidden.
 */
import type { ErrorCode } from '../util/errors.js';

export interface HttpErrorMapping {
  readonly status: number;
  /** The `code` of the error body. */
  readonly code: string;
  /**
   * What the body's `error` says: `message` (default) the error's message, `unavailable` just
   * "temporarily unavailable, try again", `internal` just "internal error" (the message of both is only
   * logged).
   */
  readonly show?: 'message' | 'unavailable' | 'internal';
}

/** A dependency (Redis, a time budget) failed: 503, the client may retry. */
const UNAVAILABLE: HttpErrorMapping = { status: 503, code: 'unavailable', show: 'unavailable' };
/** Not the client's fault: 500, message hidden. */
const INTERNAL: HttpErrorMapping = { status: 500, code: 'internal', show: 'internal' };

export const HTTP_ERRORS: Readonly<Record<ErrorCode, HttpErrorMapping>> = {
  INTERNAL: INTERNAL,
  INVALID_ARGUMENT: INTERNAL,
  CONFIG_INVALID: INTERNAL,
  INVALID_KEY: { status: 400, code: 'invalid_key' },
  INVALID_RANGE: { status: 400, code: 'invalid_range' },
  CLOSED: UNAVAILABLE,
  TIMEOUT: UNAVAILABLE,
  NOT_FOUND: { status: 404, code: 'not_found' },
  INVALID_STREAM_ID: INTERNAL,
  DECODE_FAILED: INTERNAL,
  SCHEMA_VERSION_UNSUPPORTED: INTERNAL,
  REDIS_UNAVAILABLE: UNAVAILABLE,
  REDIS_NOPERM: INTERNAL,
  REDIS_CODE_NOT_LOADED: INTERNAL,
  REDIS_SERVER_NOT_FOUND: INTERNAL,
  REDIS_SERVER_START_FAILED: INTERNAL,
  EMBEDDED_REDIS_FAILED: INTERNAL,
  PORT_IN_USE: INTERNAL,
  SHUTDOWN_FAILED: INTERNAL,
  OPEN_HANDLES: INTERNAL,
  DLQ_REPLAY_REFUSED: INTERNAL,
  REPLY_UNEXPECTED: INTERNAL,
  ACL_APPLY_FAILED: INTERNAL,
  STORE_LOCKED: INTERNAL,
  STRATEGY_INVALID: { status: 400, code: 'strategy_invalid' },
  STRATEGY_COMMAND_REFUSED: { status: 409, code: 'command_refused' },
  BENCH_FAILED: INTERNAL,
  REQUEST_TIMEOUT: INTERNAL,
  COMMAND_FAILED: INTERNAL,
  COMMAND_UNKNOWN: INTERNAL,
  COMMAND_INVALID: INTERNAL,
  COMMAND_EXPIRED: INTERNAL,
  HANDLER_FAILED: INTERNAL,
  RESULT_INVALID: INTERNAL,
  REMOTE_CODE_UNKNOWN: INTERNAL,
  UNAUTHORIZED: { status: 401, code: 'unauthorized' },
  CROSS_ORIGIN: { status: 403, code: 'cross_origin' },
  BAD_REQUEST: { status: 400, code: 'bad_request' },
  BAD_QUERY: { status: 400, code: 'bad_query' },
  PAYLOAD_TOO_LARGE: { status: 413, code: 'payload_too_large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, code: 'unsupported_media_type' },
  LOGIN_NOT_CONFIGURED: { status: 503, code: 'login_not_configured' },
  BOT_NOT_CONFIGURED: { status: 503, code: 'bot_not_configured' },
  TELEGRAM_MALFORMED: { status: 400, code: 'telegram_malformed' },
  TELEGRAM_BAD_HASH: { status: 401, code: 'telegram_bad_hash' },
  TELEGRAM_STALE: { status: 401, code: 'telegram_stale' },
  TELEGRAM_FUTURE: { status: 401, code: 'telegram_future' },
  TELEGRAM_REPLAYED: { status: 401, code: 'telegram_replayed' },
  SESSION_LIMIT: { status: 429, code: 'session_limit' },
  BACKTESTS_UNAVAILABLE: { status: 501, code: 'backtests_unavailable' },
  TOO_MANY_CONNECTIONS: { status: 429, code: 'too_many_connections' },
  RATE_LIMITED: { status: 429, code: 'rate_limited' },
  QUOTA_EXCEEDED: { status: 429, code: 'quota_exceeded' },
  BAD_JSON: INTERNAL,
  UNKNOWN_OP: INTERNAL,
  UNKNOWN_CHANNEL: INTERNAL,
  INVALID_INSTRUMENT: INTERNAL,
  INVALID_TIMEFRAME: INTERNAL,
  INVALID_SOURCE: INTERNAL,
  INVALID_FROM: INTERNAL,
  ALREADY_SUBSCRIBED: INTERNAL,
  NOT_SUBSCRIBED: INTERNAL,
  TOO_MANY_SUBSCRIPTIONS: INTERNAL,
  INSTRUMENT_NOT_SERVED: INTERNAL,
  SUBSCRIBE_RATE_LIMITED: INTERNAL,
  RELAY_FULL: INTERNAL,
  UNAVAILABLE: INTERNAL,
  TOO_MANY_MESSAGES: INTERNAL,
  CLIENT_TOO_SLOW: INTERNAL,
};
