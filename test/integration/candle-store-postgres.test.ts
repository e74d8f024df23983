import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ClosedError, ConfigError, InvalidArgumentError } from '../../src/util/errors.js';
import { createPostgresStore } from '../../src/history/postgres-store.js';
import { pgSqlDatabase } from '../../src/sql/postgres.js';
import { upsertStatements } from '../../src/history/sql/candles.js';
import { MIGRATION_LOCK_KEY, MIGRATIONS_TABLE, runMigrations } from '../../src/sql/migrator.js';
import { CANDLE_MIGRATIONS } from '../../src/history/sql/migrations.js';
import type { Candle } from '../../src/contracts/candle.js';
import { candle, candleStoreConformance, expectExactDoubles } from '../conformance/candle-store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { uniq } from '../helpers/redis.js';

let server: Promise<TestPostgres> | undefined;
const postgres = (): Promise<TestPostgres> => (server ??= startPostgres());

candleStoreConformance('postgres', async () =>
  createPostgresStore({ url: (await postgres()).url, poolSize: 4 }),
);

const T0 = Date.UTC(2026, 1, 10, 12, 0);
const M = 60_000;

/** A new empty database, or undefined (test skipped) when TEST_DATABASE_URL's role may not create one. */
async function freshDatabase(): Promise<string | undefined> {
  return (await postgres()).createDatabase();
}

async function migrationRows(url: string): Promise<{ name: string; appliedAt: string }[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; applied_at: string }>(
      `SELECT name, applied_at::text AS applied_at FROM ${MIGRATIONS_TABLE} ORDER BY name`,
    );
    return rows.map((r) => ({ name: r.name, appliedAt: r.applied_at }));
  } finally {
    await client.end();
  }
}

describe('postgres candle store', () => {
  it('runs against a real PostgreSQL (TEST_PG_NO_LOCAL=1 forces the private initdb cluster)', async () => {
    const pgs = await postgres();
    if (process.env['TEST_DATABASE_URL']) expect(pgs.source).toBe('env');
    else if (process.env['TEST_PG_NO_LOCAL'] === '1') expect(pgs.source).toBe('initdb');
    else expect(['local', 'initdb']).toContain(pgs.source);
    const client = new pg.Client({ connectionString: pgs.url });
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    await client.end();
    expect(rows[0]?.v).toMatch(/^\d+/);
  });

  it('records applied migrations in marketbus_migrations and does not apply them again', async (ctx) => {
    const url = await freshDatabase();
    if (url === undefined) return ctx.skip();
    const store = createPostgresStore({ url });
    await store.migrate();
    const first = await migrationRows(url);
    expect(first.map((r) => r.name)).toEqual(CANDLE_MIGRATIONS.map((m) => m.name));

    // 0001 is a plain CREATE TABLE: applying it twice would fail, so passing here means it was skipped.
    await store.migrate();
    const again = createPostgresStore({ url });
    await again.migrate();
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    expect(await runMigrations(pgSqlDatabase(pool), CANDLE_MIGRATIONS)).toEqual([]);
    await pool.end();
    expect(await migrationRows(url)).toEqual(first);
    await Promise.all([store.close(), again.close()]);
  });

  it('two stores migrating a fresh database at the same time both succeed', async (ctx) => {
    const url = await freshDatabase();
    if (url === undefined) return ctx.skip();
    const stores = Array.from({ length: 4 }, () => createPostgresStore({ url, poolSize: 2 }));
    const results = await Promise.allSettled(stores.map((s) => s.migrate()));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect((await migrationRows(url)).map((r) => r.name)).toEqual(CANDLE_MIGRATIONS.map((m) => m.name));
    const k = `sim:spot:${uniq('M').toUpperCase()}`;
    await stores[0]?.insert([candle(k, 0)]);
    expect(await stores[3]?.range(k, T0, T0 + M)).toEqual([candle(k, 0)]);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('migrate() waits while another process holds the migration lock', async (ctx) => {
    const url = await freshDatabase();
    if (url === undefined) return ctx.skip();
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    const store = createPostgresStore({ url });
    let done = false;
    const migrating = store.migrate().then(() => (done = true));
    await new Promise((r) => setTimeout(r, 400));
    expect(done).toBe(false);
    await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
    await migrating;
    expect(done).toBe(true);
    await holder.end();
    await store.close();
  });

  it('stores doubles exactly, even where the server is set to print floats with 15 digits', async (ctx) => {
    const url = await freshDatabase();
    if (url === undefined) return ctx.skip();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const dbName = new URL(url).pathname.slice(1);
    await admin.query(`ALTER DATABASE ${dbName} SET extra_float_digits = 0`);
    await admin.end();
    // A plain client on that database gets rounded text back...
    const plain = new pg.Client({ connectionString: url });
    await plain.connect();
    const { rows } = await plain.query<{ x: number }>('SELECT $1::float8 AS x', [0.1 + 0.2]);
    await plain.end();
    expect(rows[0]?.x).toBe(0.3);
    // ...the store's connections ask for exact output at startup.
    const store = createPostgresStore({ url });
    await store.migrate();
    await expectExactDoubles(store);
    await store.close();
  });

  it('a batch is all or nothing: a refused candle writes none of it', async () => {
    const store = createPostgresStore({ url: (await postgres()).url });
    const k = `sim:spot:${uniq('A').toUpperCase()}`;
    const batch: Candle[] = Array.from({ length: 2500 }, (_, i) => candle(k, i));
    await expect(store.insert([...batch, { ...candle(k, 9999), tsClose: T0 }])).rejects.toThrow(
      InvalidArgumentError,
    );
    expect(await store.bounds(k)).toBeNull();
    await store.close();
  });

  it('a bad URL is a ConfigError naming DATABASE_URL', () => {
    for (const url of [
      '',
      '   ',
      'not a url',
      'mysql://u@h/db',
      'http://h:5432/db',
      'postgres://h:99999999/db',
    ]) {
      let err: unknown;
      try {
        createPostgresStore({ url });
      } catch (e) {
        err = e;
      }
      expect(err, url).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe('DATABASE_URL');
    }
    const e = (() => {
      try {
        createPostgresStore({ url: 'postgres://u:secret@h:x/db' });
      } catch (x) {
        return x;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect(String(e)).not.toContain('secret');
    // Socket URLs in node-pg's form are accepted (connections are made on first use).
    const s = createPostgresStore({ url: 'postgresql://postgres@/marketbus?host=/var/run/postgresql' });
    return s.close();
  });

  it('a closed store refuses calls with ClosedError', async () => {
    const store = createPostgresStore({ url: (await postgres()).url });
    await store.close();
    await store.close();
    await expect(store.range('sim:spot:X', 0, 1)).rejects.toBeInstanceOf(ClosedError);
    await expect(store.insert([])).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('candle upsert statements', () => {
  it('are a handful of bind-parameter statements, the later duplicate winning', () => {
    const k = "sim:spot:X'); DROP TABLE t; --";
    const batch = Array.from({ length: 2000 }, (_, i) => ({ ...candle(k, i), symbol: "Y'; --" }));
    const statements = upsertStatements([...batch, candle(k, 5, 'rest', 999)]);
    expect(statements).toHaveLength(2);
    for (const s of statements) {
      expect(s.params).toHaveLength(12);
      expect(s.text).not.toContain('DROP');
      expect(s.text).not.toContain("Y'");
    }
    const [first] = statements;
    const opens = first?.params[1] as number[];
    const idx = opens.indexOf(T0 + 5 * M);
    expect((first?.params[11] as string[])[idx]).toBe('rest');
    expect(statements.reduce((n, s) => n + (s.params[0] as string[]).length, 0)).toBe(2000);
  });

  it('refuse candles that cannot be stored faithfully', () => {
    const c = candle('sim:spot:X', 0);
    for (const bad of [
      { ...c, timeframe: '5m' as const, tsClose: c.tsOpen + 5 * M },
      { ...c, tsOpen: c.tsOpen + 1, tsClose: c.tsClose + 1 },
      { ...c, tsClose: c.tsOpen },
      { ...c, open: Number.NaN },
      { ...c, volumeQuote: Number.POSITIVE_INFINITY },
      { ...c, marketId: 1.5 },
      { ...c, instrumentKey: '' },
    ]) {
      expect(() => upsertStatements([bad])).toThrow(InvalidArgumentError);
    }
  });
});
