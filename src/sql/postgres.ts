/**
 * PostgreSQL through a `pg.Pool`: URL checks, the pool, and the {@link SqlDatabase} over it that every
 * SQL module (candles, identity, strategies, backtests) runs on.
 */
import pg from 'pg';
import { withDefaults } from '../util/defaults.js';
import { ConfigError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { SqlDatabase, SqlExecutor } from './executor.js';

export interface PostgresStoreOptions {
  /**
   * `postgres://` or `postgresql://` URL, e.g. `postgresql://user:pass@db:5432/marketbus` or, for a
   * Unix socket, `postgresql://user@localhost/marketbus?host=/var/run/postgresql`. Query parameters are
   * node-pg's (`sslmode`, `application_name`, ...).
   */
  readonly url: string;
  /**
   * The setting the URL came from, named by the ConfigError when it is not usable.
   * @defaultValue `DATABASE_URL`
   */
  readonly urlKey?: string;
  /**
   * Most connections the pool opens (queries beyond wait for a free one), connections.
   * @defaultValue 10
   */
  readonly poolSize?: number;
  /**
   * Longest wait for a new connection (TCP, TLS, authentication), ms. 0 = no limit.
   * @defaultValue 10000
   */
  readonly connectTimeoutMs?: number;
  /**
   * An unused connection is closed after this long, ms. 0 = never.
   * @defaultValue 30000
   */
  readonly idleTimeoutMs?: number;
  /**
   * Server-side `statement_timeout` of every connection, ms. 0 = none (the server's setting).
   * @defaultValue 0
   */
  readonly statementTimeoutMs?: number;
  /**
   * `application_name` shown in pg_stat_activity (a URL parameter wins).
   * @defaultValue `marketbus`
   */
  readonly applicationName?: string;
  /**
   * Where pool errors (a server closing an idle connection) and migrations are logged.
   * @defaultValue `silentLogger` (nothing logged)
   */
  readonly logger?: Logger;
}

/** The defaults of {@link PostgresStoreOptions}, applied by `createPgPool`. */
export const POSTGRES_DEFAULTS = Object.freeze({
  urlKey: 'DATABASE_URL',
  poolSize: 10,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  statementTimeoutMs: 0,
  applicationName: 'marketbus',
  logger: silentLogger,
} satisfies Partial<PostgresStoreOptions>);

/** The URL with any password replaced, for messages. */
function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

/**
 * Check a database URL the way node-pg will read it (it accepts an empty host before `/db` for socket
 * URLs: `postgresql://user@/db?host=/run/postgresql`). Throws ConfigError naming `key`.
 */
export function validatePostgresUrl(url: string, key = 'DATABASE_URL'): void {
  if (typeof url !== 'string' || url.trim() === '') throw new ConfigError(key, 'is empty');
  let parsed: URL;
  try {
    try {
      parsed = new URL(url);
    } catch {
      parsed = new URL(url.replace('@/', '@placeholder/'));
    }
  } catch {
    throw new ConfigError(key, `not a URL: ${JSON.stringify(redact(url))}`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(key, `scheme must be postgres:// or postgresql://, got ${parsed.protocol}//`);
  }
}

function positiveInt(key: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new ConfigError(key, `expected a whole number >= 1, got ${v}`);
  return v;
}

function nonNegativeInt(key: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new ConfigError(key, `expected a whole number >= 0, got ${v}`);
  return v;
}

/** A {@link SqlDatabase} over a pool: transactions check out one client, and a broken one is discarded. */
export function pgSqlDatabase(pool: pg.Pool): SqlDatabase {
  return {
    query: (text, params) => pool.query(text, params),
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is unusable (server gone, protocol error): do not return it to the pool.
          // A non-Error thrown by the driver, wrapped so the cause chain has a message.
          broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
    end: () => pool.end(),
  };
}

/** The pool behind a PostgreSQL store (also used on its own for the strategy and identity tables). */
export function createPgPool(options: PostgresStoreOptions): pg.Pool {
  const opts = withDefaults(POSTGRES_DEFAULTS, options);
  validatePostgresUrl(opts.url, opts.urlKey);
  const logger = opts.logger;
  const statementTimeoutMs = nonNegativeInt('statementTimeoutMs', opts.statementTimeoutMs);
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: positiveInt('poolSize', opts.poolSize),
    connectionTimeoutMillis: nonNegativeInt('connectTimeoutMs', opts.connectTimeoutMs),
    idleTimeoutMillis: nonNegativeInt('idleTimeoutMs', opts.idleTimeoutMs),
    application_name: opts.applicationName,
    ...(statementTimeoutMs > 0 ? { statement_timeout: statementTimeoutMs } : {}),
    // Shortest exact float8 text whatever the server's postgresql.conf says (an old config with
    // extra_float_digits = 0 would otherwise round prices to 15 digits). Sent in the startup packet.
    options: '-c extra_float_digits=3',
  });
  // Without a listener, an idle connection dropped by the server would crash the process.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'postgres pool: idle connection failed'));
  return pool;
}
