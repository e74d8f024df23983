/**
 * Every failure marketbus reports carries a stable `code`. Callers branch on `code` (or on the class),
 * never on the message, which is for people.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'INVALID_KEY'
  | 'INVALID_STREAM_ID'
  | 'DECODE_FAILED'
  | 'SCHEMA_VERSION_UNSUPPORTED'
  | 'REDIS_UNAVAILABLE'
  | 'REDIS_NOPERM'
  | 'ACL_APPLY_FAILED'
  | 'REDIS_SERVER_NOT_FOUND'
  | 'REDIS_SERVER_START_FAILED'
  | 'EMBEDDED_REDIS_FAILED'
  | 'SHUTDOWN_FAILED'
  | 'OPEN_HANDLES'
  | 'PORT_IN_USE'
  | 'CLOSED'
  | 'DLQ_ENTRY_NOT_FOUND'
  | 'DLQ_REPLAY_REFUSED'
  | 'TIMEOUT'
  | 'REPLY_UNEXPECTED'
  | 'STORE_LOCKED'
  | 'INVALID_RANGE'
  | 'STRATEGY_INVALID'
  | 'REQUEST_TIMEOUT'
  | 'COMMAND_FAILED'
  | 'NOT_FOUND';

export class MarketbusError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
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

export class InvalidStreamIdError extends MarketbusError {
  constructor(value: string) {
    super('INVALID_STREAM_ID', `invalid stream entry ID ${JSON.stringify(value.slice(0, 60))}`);
  }
}

/** An entry's fields could not be turned into the expected type. Such entries are dead-lettered at once. */
export class DecodeError extends MarketbusError {
  readonly issues: readonly string[];
  constructor(message: string, issues: readonly string[] = [], options?: { cause?: unknown }) {
    super('DECODE_FAILED', issues.length > 0 ? `${message}: ${issues.join('; ')}` : message, options);
    this.issues = issues;
  }
}

export class SchemaVersionError extends MarketbusError {
  readonly found: string;
  constructor(found: string, supported: readonly string[]) {
    super(
      'SCHEMA_VERSION_UNSUPPORTED',
      `schema_version ${JSON.stringify(found)} is not supported (supported: ${supported.join(', ')})`,
    );
    this.found = found;
  }
}

export class RedisUnavailableError extends MarketbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('REDIS_UNAVAILABLE', message, options);
  }
}

/** Redis refused a command for lack of ACL rights (NOPERM): a deployment problem, not an outage. */
export class RedisPermissionError extends MarketbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('REDIS_NOPERM', message, options);
  }
}

export class RedisServerNotFoundError extends MarketbusError {
  constructor(binary: string) {
    super(
      'REDIS_SERVER_NOT_FOUND',
      `${binary} was not found on PATH. Install it with: sudo apt-get install -y redis-server ` +
        `(or set REDIS_URL to a running Redis)`,
    );
  }
}

export class RedisServerStartError extends MarketbusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('REDIS_SERVER_START_FAILED', message, options);
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

export class DeadLetterNotFoundError extends MarketbusError {
  constructor(stream: string, id: string) {
    super('DLQ_ENTRY_NOT_FOUND', `no dead letter ${id} in ${stream}`);
  }
}

export class DeadLetterReplayRefusedError extends MarketbusError {
  constructor(message: string) {
    super('DLQ_REPLAY_REFUSED', message);
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

/**
 * A request on the command bus got no answer in time: the service is down, overloaded, or the command
 * was lost. The command carried the same deadline, so a service that reads it later does not run it.
 */
export class RequestTimeoutError extends MarketbusError {
  readonly service: string;
  readonly commandType: string;
  readonly commandId: string;
  readonly timeoutMs: number;
  constructor(service: string, commandType: string, commandId: string, timeoutMs: number) {
    super(
      'REQUEST_TIMEOUT',
      `no answer from service ${service} to ${commandType} (command ${commandId}) within ${timeoutMs} ms`,
    );
    this.service = service;
    this.commandType = commandType;
    this.commandId = commandId;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The service answered a command with an error. `remoteCode` is the service's code: `COMMAND_UNKNOWN`,
 * `COMMAND_INVALID`, `COMMAND_EXPIRED`, `HANDLER_FAILED`, or a domain code such as `NOT_FOUND`.
 */
export class CommandFailedError extends MarketbusError {
  readonly service: string;
  readonly commandType: string;
  readonly commandId: string;
  readonly remoteCode: string;
  readonly issues: readonly string[];
  constructor(
    service: string,
    commandType: string,
    commandId: string,
    remote: { readonly code: string; readonly message: string; readonly issues?: readonly string[] },
  ) {
    super('COMMAND_FAILED', `${service} ${commandType} failed [${remote.code}]: ${remote.message}`);
    this.service = service;
    this.commandType = commandType;
    this.commandId = commandId;
    this.remoteCode = remote.code;
    this.issues = remote.issues ?? [];
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

/** Redis answered in a shape none of the known versions produce; `raw` is kept for the log. */
export class UnexpectedReplyError extends MarketbusError {
  readonly raw: string;
  constructor(command: string, raw: unknown) {
    const repr = safeRepr(raw);
    super('REPLY_UNEXPECTED', `unexpected ${command} reply: ${repr}`);
    this.raw = repr;
  }
}

function safeRepr(v: unknown): string {
  try {
    const s = JSON.stringify(v, (_k, x: unknown): unknown =>
      x instanceof Map
        ? Object.fromEntries(x as Map<unknown, unknown>)
        : typeof x === 'bigint'
          ? x.toString()
          : x,
    );
    return (s ?? String(v)).slice(0, 500);
  } catch {
    return String(v).slice(0, 500);
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
