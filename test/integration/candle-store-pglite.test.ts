import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import { ClosedError } from '../../src/util/errors.js';
import { createPgliteStore } from '../../src/history/pglite-store.js';
import { pgliteSqlDatabase } from '../../src/sql/pglite.js';
import { createSqlCandleStore } from '../../src/history/sql/candles.js';
import type { SqlDatabase } from '../../src/sql/executor.js';
import { MIGRATIONS_TABLE, runMigrations } from '../../src/sql/migrator.js';
import { CANDLE_MIGRATIONS } from '../../src/history/sql/migrations.js';
import type { CandleStore } from '../../src/history/store.js';
import { candle, candleStoreConformance, expectExactDoubles } from '../conformance/candle-store.js';
import { uniq } from '../helpers/redis.js';

candleStoreConformance('pglite (in memory)', () => Promise.resolve(createPgliteStore()));

const T0 = Date.UTC(2026, 1, 10, 12, 0);
const M = 60_000;
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'marketbus-pglite-'));
  dirs.push(d);
  return d;
}

const key = (): string => `sim:spot:${uniq('P').toUpperCase()}`;

async function migrationRows(db: SqlDatabase): Promise<{ name: unknown; applied_at: unknown }[]> {
  const { rows } = await db.query(
    `SELECT name, applied_at::text AS applied_at FROM ${MIGRATIONS_TABLE} ORDER BY name`,
  );
  return rows.map((r) => ({ name: r['name'], applied_at: r['applied_at'] }));
}

/** A store on a PGlite the test can also query directly (what createPgliteStore builds inside). */
function storeOn(pglite: PGlite): { store: CandleStore; db: SqlDatabase } {
  const db = pgliteSqlDatabase(pglite);
  return { store: createSqlCandleStore({ kind: 'pglite', db, name: 'pglite candle store' }), db };
}

describe('pglite candle store', () => {
  it('records applied migrations in marketbus_migrations, applies them once, also when called at once', async () => {
    const { store, db } = storeOn(new PGlite());
    // Several migrate() calls at the same time on the one connection: serialized, the first applies.
    const [a, b] = await Promise.all([
      runMigrations(db, CANDLE_MIGRATIONS),
      runMigrations(db, CANDLE_MIGRATIONS),
      store.migrate(),
    ]);
    expect([...a, ...b]).toEqual(CANDLE_MIGRATIONS.map((m) => m.name));
    const rows = await migrationRows(db);
    expect(rows.map((r) => r.name)).toEqual(CANDLE_MIGRATIONS.map((m) => m.name));
    await store.migrate();
    expect(await runMigrations(db, CANDLE_MIGRATIONS)).toEqual([]);
    expect(await migrationRows(db)).toEqual(rows);
    await store.close();
  });

  it('keeps candles and migrations across close and reopen of the same dataDir', async () => {
    const dataDir = join(tempDir(), 'nested', 'pglite');
    const k = key();
    const cs = Array.from({ length: 1500 }, (_, i) => candle(k, i, 'replay'));

    const first = createPgliteStore({ dataDir });
    await first.migrate();
    await first.insert(cs);
    await first.close();
    await first.close();

    const second = createPgliteStore({ dataDir });
    await second.migrate();
    expect(await second.bounds(k)).toEqual({ first: T0, last: T0 + 1499 * M, count: 1500 });
    expect(await second.range(k, T0, T0 + 1500 * M)).toEqual(cs);
    expect(await second.instruments()).toEqual([k]);
    await second.close();

    const raw = new PGlite(dataDir);
    const db = pgliteSqlDatabase(raw);
    expect((await migrationRows(db)).map((r) => r.name)).toEqual(CANDLE_MIGRATIONS.map((m) => m.name));
    expect(await runMigrations(db, CANDLE_MIGRATIONS)).toEqual([]);
    await db.end();
  });

  it('serializes concurrent calls on its one connection; a chunked insert is seen whole or not at all', async () => {
    const store = createPgliteStore();
    await store.migrate();
    const k = key();
    const batch = Array.from({ length: 2500 }, (_, i) => candle(k, i)); // 3 statements in one transaction
    const seen: number[] = [];
    const reads = Array.from({ length: 20 }, async () => {
      seen.push((await store.openTimes(k, T0, T0 + 3000 * M)).length);
    });
    await Promise.all([store.insert(batch), ...reads, store.insert([candle(key(), 0)])]);
    expect(seen.every((n) => n === 0 || n === 2500)).toBe(true);
    expect((await store.last(k, 2))[1]).toEqual(candle(k, 2499));
    await expectExactDoubles(store);
    await store.close();
  });

  it('close() is idempotent, waits for running calls, and later calls fail with ClosedError', async () => {
    const store = createPgliteStore();
    const migrating = store.migrate();
    await Promise.all([store.close(), store.close()]);
    await migrating;
    await store.close();
    await expect(store.bounds('sim:spot:X')).rejects.toBeInstanceOf(ClosedError);
    await expect(store.migrate()).rejects.toBeInstanceOf(ClosedError);
  });
});
