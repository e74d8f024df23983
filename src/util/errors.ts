/**
 * The one registry of error codes. Every failure marketbus reports carries one of these as its `code`;
 * callers branch on `code` (or on the class), never on the message, which is for people. The value of
 * each entry says what the code means. The HTTP status (`src/api/error-status.ts`), WebSocket close
 * code (`src/api/live/close-codes.ts`) and CLI exit code (`src/cli/exit-codes.ts`) of every code are
 * tables keyed by this type, so a code added here without a mapping does not compile.
 *
 * The same strings are the `code` of command error replies on the bus (`<type>.error`), which services
 * in other languages send and read.
 */
export const ERROR_CODES = {
  // ---- generic ----------------------------------------------------------------------------------
  INTERNAL: 'a failure that is not one of ours (a bug or a library error); the fallback of every table',
  INVALID_ARGUMENT: 'a function argument or option is outside its domain; the message names it',
  CONFIG_INVALID: 'a configuration value is missing or wrong (ConfigError.key is its dotted path)',
  INVALID_KEY: 'an instrument key, user id or other stream-name part failed validation',
  INVALID_RANGE: 'a time range that cannot be served (from after to, unparsable times)',
  CLOSED: 'the component was closed; the operation was not carried out',
  TIMEOUT: 'an operation did not finish in its time budget',
  NOT_FOUND: "a record the caller named does not exist, or is not the caller's",
  // ---- bus (src/bus/errors.ts) --------------------------------------------------------------------
  INVALID_STREAM_ID: 'a string is not a stream entry ID <ms>-<seq>',
  DECODE_FAILED: 'an entry or message could not be turned into the expected type (dead-lettered)',
  SCHEMA_VERSION_UNSUPPORTED: 'an entry carries a schema_version this build does not read',
  REDIS_UNAVAILABLE: 'Redis cannot be reached or did not answer',
  REDIS_NOPERM: 'Redis refused a command for lack of ACL rights',
  REDIS_CODE_NOT_LOADED:
    'the marketbus Redis functions or BullMQ scripts are not loaded and this connection may not load them (run `marketbus redis functions load`)',
  REDIS_SERVER_NOT_FOUND: 'redis-server (for the embedded server) is not on PATH',
  REDIS_SERVER_START_FAILED: 'the embedded redis-server did not start',
  EMBEDDED_REDIS_FAILED: 'the embedded redis-server kept dying past its restart limit (marketbus up stops)',
  DLQ_REPLAY_REFUSED: 'a dead letter cannot be replayed (no source stream, or the source is gone)',
  REPLY_UNEXPECTED: 'a server answered in a shape none of the known versions produce',
  // ---- deployment and storage ---------------------------------------------------------------------
  ACL_APPLY_FAILED: 'Redis refused an ACL SETUSER (the connection may not administer ACLs)',
  STORE_LOCKED: 'the embedded store directory is in use by another live process',
  PORT_IN_USE: 'a port the service must listen on is taken by another process',
  SHUTDOWN_FAILED: 'one or more parts failed to close (the error lists them); the rest were closed',
  OPEN_HANDLES: 'a service command stopped but handles stayed open past the grace (they are named)',
  // ---- strategies ---------------------------------------------------------------------------------
  STRATEGY_INVALID: 'a strategy definition is wrong (StrategyInvalidError.field names the value)',
  STRATEGY_COMMAND_REFUSED: 'the live runner answered strategy.run / strategy.stop with ok: false',
  BENCH_FAILED: 'a benchmark run broke one of its own checks (entries left over, a worker misbehaved)',
  // ---- commands over the bus (src/commands) --------------------------------------------------------
  REQUEST_TIMEOUT: 'a command on the bus got no answer in time',
  COMMAND_FAILED: 'a service answered a command with an error (CommandFailedError.remoteCode)',
  COMMAND_UNKNOWN: 'remote: the service accepts no command of that type',
  COMMAND_INVALID: 'remote: the command payload does not match its schema',
  COMMAND_EXPIRED: "remote: the requester's deadline passed before the command was read",
  HANDLER_FAILED: 'remote: the handler failed at every delivery',
  RESULT_INVALID: 'remote: the handler returned a result that does not match its schema',
  REMOTE_CODE_UNKNOWN:
    'remote: the service answered a code not in this registry, or an unreadable error payload',
  // ---- HTTP API (src/api) ---------------------------------------------------------------------------
  UNAUTHORIZED: 'no valid session, or a bad webhook secret',
  CROSS_ORIGIN: 'a state-changing request or WebSocket upgrade from a page of another origin',
  BAD_REQUEST: 'a request (HTTP body, WebSocket message) is not of the expected form',
  BAD_QUERY: 'an HTTP query string is not of the expected form',
  PAYLOAD_TOO_LARGE: 'an HTTP body over the API body limit',
  UNSUPPORTED_MEDIA_TYPE: 'an HTTP body of a content type the API does not read',
  LOGIN_NOT_CONFIGURED: 'Telegram login needs TELEGRAM_BOT_TOKEN',
  BOT_NOT_CONFIGURED: 'chat linking needs TELEGRAM_BOT_TOKEN and TELEGRAM_BOT_USERNAME',
  TELEGRAM_MALFORMED: 'a Telegram login payload is not of the documented form',
  TELEGRAM_BAD_HASH: 'a Telegram login payload is not signed by this bot',
  TELEGRAM_STALE: 'a Telegram login payload is older than the accepted age',
  TELEGRAM_FUTURE: 'a Telegram login payload is dated in the future',
  TELEGRAM_REPLAYED: 'a Telegram login payload was used to sign in before (each works once)',
  SESSION_LIMIT: 'the user has the most live sessions allowed (MAX_SESSIONS_PER_USER)',
  BACKTESTS_UNAVAILABLE: 'backtests need a single Redis server (no BullMQ on Redis Cluster)',
  TOO_MANY_CONNECTIONS: 'the user has the most live WebSocket connections allowed',
  RATE_LIMITED: 'too many requests of one kind from one client in the window (docs/security.md)',
  QUOTA_EXCEEDED: 'the user has the most of something allowed: strategies, running runs, queued backtests',
  // ---- live WebSocket protocol (src/api/live; `op: error` codes are these in lower case) -------------
  BAD_JSON: 'a WebSocket message is not JSON',
  UNKNOWN_OP: 'a WebSocket message has an op the protocol does not define',
  UNKNOWN_CHANNEL: 'a subscription names a channel the protocol does not define',
  INVALID_INSTRUMENT: 'a subscription names an invalid instrument key',
  INVALID_TIMEFRAME: 'a subscription names an invalid timeframe',
  INVALID_SOURCE: 'a subscription names an invalid source',
  INVALID_FROM: 'a subscription\'s from is not a stream entry ID, "0" or "$"',
  ALREADY_SUBSCRIBED: 'the connection is already subscribed to that stream',
  NOT_SUBSCRIBED: 'the connection is not subscribed to that stream',
  TOO_MANY_SUBSCRIPTIONS: 'the connection or its user has the most subscriptions allowed',
  INSTRUMENT_NOT_SERVED:
    'a subscription names an instrument that no feed serves (per its md.status.* entries)',
  SUBSCRIBE_RATE_LIMITED: 'the connection sent more subscribe/unsubscribe requests than its rate allows',
  RELAY_FULL: 'the live relay process holds the most subscriptions allowed in total; try again later',
  UNAVAILABLE: 'the stream cannot be read now; try again',
  TOO_MANY_MESSAGES: 'the client sent more messages than the flood limit (the connection is closed)',
  CLIENT_TOO_SLOW: 'the client does not read fast enough: its send queue passed the bound (closed)',
} as const satisfies Readonly<Record<string, string>>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** `s` is a code of the registry (for codes read from the wire). */
export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ERROR_CODES, s);
}

/** The base of every error marketbus throws for a known failure: a registry `code`, a message, a cause. */
export class MarketbusError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The registry code of any thrown value: its own for a MarketbusError, `INTERNAL` for anything else. */
export function errorCodeOf(err: unknown): ErrorCode {
  return err instanceof MarketbusError ? err.code : 'INTERNAL';
}

/**
 * A function argument or option outside its domain (`name` is the argument or option, e.g.
 * `capacity`, `ts_open`). For bad input reaching a public function; a condition that can only be a
 * bug in marketbus itself is a plain Error saying so.
 */
export class InvalidArgumentError extends MarketbusError {
  readonly argument: string;
  constructor(argument: string, problem: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', `${argument}: ${problem}`, options);
    this.argument = argument;
  }
}

/** A configuration value is missing or wrong; `key` is the dotted path of the offending setting. */
export class ConfigError extends MarketbusError {
  readonly key: string;
  constructor(key: string, problem: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', `config ${key}: ${problem}`, options);
    this.key = key;
  }
}

/** An instrument key, user id or other stream-name part failed validation. */
export class InvalidKeyError extends MarketbusError {
  readonly part: string;
  constructor(part: string, value: string, rule: string) {
    super('INVALID_KEY', `invalid ${part} ${JSON.stringify(value.slice(0, 120))}: ${rule}`);
    this.part = part;
  }
}

/** The component was closed; the operation was not carried out. */
export class ClosedError extends MarketbusError {
  constructor(what: string) {
    super('CLOSED', `${what} is closed`);
  }
}

export class TimeoutError extends MarketbusError {
  constructor(what: string, ms: number) {
    super('TIMEOUT', `${what} timed out after ${ms} ms`);
  }
}

/** The embedded store's directory is in use by another live process (PGlite is single-process). */
export class StoreLockedError extends MarketbusError {
  constructor(dir: string, pid: number) {
    super(
      'STORE_LOCKED',
      `the embedded store ${dir} is in use by process ${pid} (a running marketbus up?); stop it, or set DATABASE_URL / CLICKHOUSE_URL`,
    );
  }
}

/** A time range that cannot be served (from after to, unparsable times). */
export class InvalidRangeError extends MarketbusError {
  constructor(message: string) {
    super('INVALID_RANGE', message);
  }
}

/**
 * A strategy definition is wrong. `field` is the dotted path of the offending value in the payload
 * (`signal_template`, `indicators.0.params.fast`, `(root)` for the payload itself); for
 * `signal_template`, `position` is the 0-based character offset of the problem when there is one.
 */
export class StrategyInvalidError extends MarketbusError {
  readonly field: string;
  readonly position: number | undefined;
  constructor(field: string, problem: string, options?: { position?: number; cause?: unknown }) {
    super('STRATEGY_INVALID', `strategy ${field}: ${problem}`, { cause: options?.cause });
    this.field = field;
    this.position = options?.position;
  }
}

/** A record the caller named (a strategy, a backtest) does not exist, or is not the caller's. */
export class NotFoundError extends MarketbusError {
  readonly what: string;
  readonly id: string;
  constructor(what: string, id: string) {
    super('NOT_FOUND', `no ${what} ${JSON.stringify(id.slice(0, 120))}`);
    this.what = what;
    this.id = id;
  }
}

/**
 * The user has the most `quota` allowed (`limit`): strategies, running runs, queued backtests. The
 * API answers 429 with `Retry-After` (docs/security.md, "Rate limits and quotas").
 */
export class QuotaExceededError extends MarketbusError {
  readonly quota: string;
  readonly limit: number;
  constructor(quota: string, limit: number, message: string) {
    super('QUOTA_EXCEEDED', message);
    this.quota = quota;
    this.limit = limit;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
