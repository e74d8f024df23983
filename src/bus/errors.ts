/** The bus's own errors: everything src/bus throws for a known failure (codes in src/util/errors.ts). */
import { MarketbusError } from '../util/errors.js';

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

export class DeadLetterReplayRefusedError extends MarketbusError {
  constructor(message: string) {
    super('DLQ_REPLAY_REFUSED', message);
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
