/**
 * A real PostgreSQL for integration tests, found in this order:
 *
 *   1. `TEST_DATABASE_URL`: used as it is (tests there use random instrument keys); fresh databases
 *      from {@link TestPostgres.createDatabase} are made on that server when the role may CREATE them.
 *   2. The machine's own server: socket /var/run/postgresql, then 127.0.0.1:5432, as user postgres, then
 *      root, trust auth. We CREATE a database `marketbus_test_<hex>` and DROP it afterwards.
 *   3. A private cluster (test/helpers/private-postgres.ts): Debian's `/usr/lib/postgresql/<v>/bin/initdb`
 *      and `pg_ctl`, in a temporary directory, on a free port, run as `postgres` (or `nobody`) when we are
 *      root; stopped and removed afterwards. Without those binaries: an error that says
 *      `apt-get install -y postgresql`.
 *
 * Only databases this helper created are ever dropped. `TEST_PG_NO_LOCAL=1` makes step 2 probe a closed
 * port instead of the real server, to exercise step 3 on a machine that has the service running.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll } from 'vitest';
import { freePort } from '../../src/bus/redis-server.js';
import {
  INSTALL_HINT,
  PostgresNotInstalledError,
  startPrivatePostgres,
  type PrivatePostgres,
} from './private-postgres.js';

export type PostgresSource = 'env' | 'local' | 'initdb';

export interface TestPostgres {
  /** Where the server came from. */
  readonly source: PostgresSource;
  /** URL of this file's own database (or `TEST_DATABASE_URL` itself). */
  readonly url: string;
  /** A new empty database on the same server, dropped by dispose(); undefined when the role may not create one. */
  createDatabase(): Promise<string | undefined>;
  /** Drop our databases and stop a private cluster. Idempotent; also run after the test file. */
  dispose(): Promise<void>;
  /** Same as dispose(). */
  drop(): Promise<void>;
}

type Found = Omit<TestPostgres, 'drop'>;

const started: TestPostgres[] = [];

afterAll(async () => {
  await Promise.allSettled(started.map((p) => p.dispose()));
});

/** A PostgreSQL for this test file, cleaned up after it. */
export async function startPostgres(): Promise<TestPostgres> {
  const envUrl = process.env['TEST_DATABASE_URL']?.trim();
  const found = envUrl ? envServer(envUrl) : ((await localServer()) ?? (await privateCluster()));
  const pgServer: TestPostgres = { ...found, drop: () => found.dispose() };
  started.push(pgServer);
  return pgServer;
}

// ---------------------------------------------------------------------------------------------------
// Databases of our own on a server we reach as a superuser (or a role with CREATEDB)

interface Admin {
  /** Connection parameters without the database. */
  readonly conn: pg.ClientConfig;
  readonly url: (database: string) => string;
}

function adminUrl(host: string, port: number, user: string): (database: string) => string {
  // A socket directory goes in `host=`; node-pg reads it from the query string.
  return (database) =>
    host.startsWith('/')
      ? `postgresql://${encodeURIComponent(user)}@localhost:${port}/${database}?host=${encodeURIComponent(host)}`
      : `postgresql://${encodeURIComponent(user)}@${host}:${port}/${database}`;
}

async function withClient<T>(config: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionTimeoutMillis: 3000, ...config });
  // An error event (server went away) must not crash the test process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const ourDatabase = (): string => `marketbus_test_${randomBytes(6).toString('hex')}`;

async function createOwnDatabase(conn: pg.ClientConfig): Promise<string> {
  const name = ourDatabase();
  // The name is ours, [a-z0-9_] only; CREATE DATABASE takes no bind parameters.
  await withClient(conn, (c) => c.query(`CREATE DATABASE ${name}`));
  return name;
}

async function dropOwnDatabase(conn: pg.ClientConfig, name: string): Promise<void> {
  if (!/^marketbus_test_[0-9a-f]{12}$/.test(name)) throw new Error(`refusing to drop ${name}: not ours`);
  await withClient(conn, async (c) => {
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); // PostgreSQL >= 13
    } catch {
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      await c.query(`DROP DATABASE IF EXISTS ${name}`);
    }
  });
}

/** A server handle whose databases are all created (and so dropped) by us. */
function ownedServer(source: PostgresSource, admin: Admin, first: string, stop?: () => Promise<void>): Found {
  const databases = [first];
  let disposing: Promise<void> | undefined;
  return {
    source,
    url: admin.url(first),
    async createDatabase() {
      const name = await createOwnDatabase(admin.conn);
      databases.push(name);
      return admin.url(name);
    },
    dispose() {
      // A private cluster is ours as a whole: stopping it and removing its directory is the cleanup.
      disposing ??= stop
        ? stop()
        : Promise.all(databases.map((d) => dropOwnDatabase(admin.conn, d))).then(() => undefined);
      return disposing;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// 1. TEST_DATABASE_URL

function envServer(url: string): Found {
  const created: string[] = [];
  let disposing: Promise<void> | undefined;
  return {
    source: 'env',
    url,
    async createDatabase() {
      try {
        const name = await createOwnDatabase({ connectionString: url });
        created.push(name);
        const u = new URL(url);
        u.pathname = `/${name}`;
        return u.toString();
      } catch {
        return undefined; // no CREATEDB on a server we were only lent
      }
    },
    dispose() {
      disposing ??= Promise.all(created.map((d) => dropOwnDatabase({ connectionString: url }, d))).then(
        () => undefined,
      );
      return disposing;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// 2. The machine's server

async function closedPort(): Promise<number> {
  return freePort(); // nothing listens there once the probe socket is closed
}

async function localServer(): Promise<Found | undefined> {
  const noLocal = process.env['TEST_PG_NO_LOCAL'] === '1';
  const hosts: { host: string; port: number }[] = noLocal
    ? [{ host: '127.0.0.1', port: await closedPort() }]
    : [
        ...(existsSync('/var/run/postgresql/.s.PGSQL.5432')
          ? [{ host: '/var/run/postgresql', port: 5432 }]
          : []),
        { host: '127.0.0.1', port: 5432 },
      ];
  for (const { host, port } of hosts) {
    for (const user of ['postgres', 'root']) {
      const conn: pg.ClientConfig = { host, port, user, database: 'postgres', connectionTimeoutMillis: 2000 };
      try {
        const first = await createOwnDatabase(conn);
        return ownedServer('local', { conn, url: adminUrl(host, port, user) }, first);
      } catch {
        // not reachable, not trusted, or may not create databases: try the next one
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// 3. A private cluster from the Debian binaries (test/helpers/private-postgres.ts)

export { INSTALL_HINT };

async function privateCluster(): Promise<Found> {
  let cluster: PrivatePostgres;
  try {
    // fsync off: a throw-away cluster need not survive a machine crash, and tests run faster.
    cluster = await startPrivatePostgres({
      database: ourDatabase(),
      fsync: false,
      dirPrefix: 'marketbus-pg-',
    });
  } catch (err) {
    if (!(err instanceof PostgresNotInstalledError)) throw err;
    throw new Error(
      'No PostgreSQL for the tests: TEST_DATABASE_URL is not set, no local server answers, and the server ' +
        `binaries (/usr/lib/postgresql/*/bin/initdb) are missing. Install them with: ${INSTALL_HINT}`,
      { cause: err },
    );
  }
  const conn: pg.ClientConfig = {
    host: '127.0.0.1',
    port: cluster.port,
    user: 'postgres',
    database: 'postgres',
  };
  return ownedServer(
    'initdb',
    { conn, url: adminUrl('127.0.0.1', cluster.port, 'postgres') },
    cluster.database,
    () => cluster.stop(),
  );
}
