/**
 * The one place marketbus talks to ClickHouse: a thin wrapper over `@clickhouse/client` (HTTP).
 *
 * Why the official client and not raw fetch: checked against Debian's clickhouse-server 18.16.1, the
 * client's plain requests (ping, DDL via `command`, SELECT ... FORMAT JSONEachRow via `query`, an
 * INSERT with a body via `exec`) work unchanged, because it sends no ClickHouse settings unless asked.
 * Two of its features do NOT work on 18.16 and are never used here:
 * - `query_params` (sent as `param_<name>`): 18.16 answers "Unknown setting param_x" (Code 115).
 *   Values are rendered with the strict escaper in sql.ts instead, on every server version.
 * - JSON/TSV inserts of floats: 18.16 parses decimal text into Float64 inexactly. Inserts use
 *   RowBinary (row-binary.ts), which carries the exact bits.
 * Reads use JSONEachRow: ClickHouse prints Float64 as the shortest text that reads back to the same
 * double (checked on 18.16 with 200,000 random doubles), and JSON.parse reads it back exactly.
 */
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { ConfigError } from '../../util/errors.js';
import { isPlainIdentifier } from './sql.js';

/** A parsed `CLICKHOUSE_URL`. */
export interface ClickHouseTarget {
  /** `http(s)://host:port`, without credentials or path. */
  readonly origin: string;
  readonly username: string;
  readonly password: string;
  /** The database named by the URL path (`http://host:8123/market_data`), if any. */
  readonly database: string | undefined;
}

const URL_SHAPE = 'expected http(s)://[user[:password]@]host[:port][/database]';

/**
 * Parse and check a ClickHouse HTTP URL. Errors are ConfigErrors naming `key` and never echo the URL
 * (it may carry a password).
 */
export function parseClickHouseUrl(raw: string, key = 'CLICKHOUSE_URL'): ClickHouseTarget {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new ConfigError(key, `not a URL (${URL_SHAPE})`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ConfigError(key, `scheme must be http:// or https://, got ${u.protocol}// (${URL_SHAPE})`);
  }
  if (u.search !== '' || u.hash !== '') {
    throw new ConfigError(key, `query strings and fragments are not supported (${URL_SHAPE})`);
  }
  const path = u.pathname.replace(/^\/+|\/+$/g, '');
  let database: string | undefined;
  if (path !== '') {
    database = safeDecode(path);
    if (database === undefined || !isPlainIdentifier(database)) {
      throw new ConfigError(
        key,
        `the path must be one database name of letters, digits and _ (${URL_SHAPE})`,
      );
    }
  }
  return {
    origin: u.origin,
    username: safeDecode(u.username) ?? '',
    password: safeDecode(u.password) ?? '',
    database,
  };
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

export interface ClickHouseHttpOptions {
  /** Timeout of one HTTP request, ms. */
  readonly requestTimeoutMs: number;
  /** Most concurrent HTTP connections (sockets) to the server. */
  readonly maxOpenConnections: number;
}

/** SQL over HTTP. Values in `sql` must come from sql.ts; nothing here builds SQL from input. */
export class ClickHouseHttp {
  private readonly client: ClickHouseClient;

  constructor(target: ClickHouseTarget, opts: ClickHouseHttpOptions) {
    this.client = createClient({
      url: target.origin,
      username: target.username || 'default',
      password: target.password,
      application: 'marketbus',
      request_timeout: opts.requestTimeoutMs,
      max_open_connections: opts.maxOpenConnections,
      // Errors are thrown to the caller, who logs them; the client's own console logger stays quiet.
      log: { level: ClickHouseLogLevel.OFF },
      // Sockets idle longer than the server's keep-alive (3 s in 18.16's shipped config) are dropped
      // client side first; 2.5 s is the client's default, kept explicit because it matters here.
      keep_alive: { enabled: true, idle_socket_ttl: 2500 },
    });
  }

  /** A statement without a result (DDL, ALTER, SYSTEM). */
  async command(sql: string): Promise<void> {
    await this.client.command({ query: sql });
  }

  /** A SELECT (without FORMAT): its rows as parsed JSON objects, for the caller to validate. */
  async rows(sql: string): Promise<unknown[]> {
    const rs = await this.client.query({ query: sql, format: 'JSONEachRow' });
    return rs.json<unknown>();
  }

  /** `INSERT INTO <table> (<columns>) FORMAT RowBinary` with `data` as the body (one statement). */
  async insertRowBinary(table: string, columns: readonly string[], data: Buffer): Promise<void> {
    const res = await this.client.exec({
      query: `INSERT INTO ${table} (${columns.join(', ')}) FORMAT RowBinary`,
      values: Readable.from([data]),
    });
    res.stream.resume();
    await finished(res.stream);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
