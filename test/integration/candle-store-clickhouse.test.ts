import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, ConfigError, InvalidArgumentError } from '../../src/util/errors.js';
import { CANDLES_TABLE, MIGRATIONS_TABLE } from '../../src/history/clickhouse/migrations.js';
import { createClickHouseStore } from '../../src/history/clickhouse/store.js';
import { sqlString } from '../../src/history/clickhouse/sql.js';
import type { CandleStore } from '../../src/history/store.js';
import type { Candle } from '../../src/contracts/candle.js';
import { candle, candleStoreConformance } from '../conformance/candle-store.js';
import { startClickHouse, type ClickHouseServer } from '../helpers/clickhouse-server.js';

const M = 60_000;
const T0 = Date.UTC(2026, 1, 10, 12, 0);

let server: ClickHouseServer;
const stores: CandleStore[] = [];

beforeAll(async () => {
  server = await startClickHouse();
  console.info(
    `clickhouse-server ${(await server.query('SELECT version()')).trim()} up in ${server.startMs} ms`,
  );
});

afterAll(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
});

function store(database: string): CandleStore {
  const s = createClickHouseStore({ url: server.url, database });
  stores.push(s);
  return s;
}

function db(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

function key(): string {
  return `sim:spot:K${randomBytes(4).toString('hex').toUpperCase()}`;
}

async function jsonRows(sql: string): Promise<Record<string, unknown>[]> {
  const body = await server.query(`${sql} FORMAT JSONEachRow`);
  return body
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

candleStoreConformance('clickhouse', () =>
  Promise.resolve(createClickHouseStore({ url: server.url, database: 'conformance' })),
);

describe('ClickHouse candle store', () => {
  it('records migrations in marketbus_migrations and does not apply them again', async () => {
    const name = db('mig');
    await store(name).migrate();
    const logged = await jsonRows(`SELECT name, applied FROM ${name}.${MIGRATIONS_TABLE}`);
    expect(logged).toEqual([{ name: '0001_canonical_candles_1m', applied: 1 }]);

    // Prove "not re-applied": drop what the migration created; migrating again (same and another store)
    // must not create it again, and must not log again.
    await server.query(`DROP TABLE ${name}.${CANDLES_TABLE}`);
    await store(name).migrate();
    await store(name).migrate();
    expect(await jsonRows(`SELECT name FROM system.tables WHERE database = '${name}' ORDER BY name`)).toEqual(
      [{ name: MIGRATIONS_TABLE }],
    );
    expect(await jsonRows(`SELECT count() AS n FROM ${name}.${MIGRATIONS_TABLE}`)).toEqual([{ n: '1' }]);
  });

  it('migrates from several stores at once without errors', async () => {
    const name = db('race');
    await Promise.all([store(name).migrate(), store(name).migrate(), store(name).migrate()]);
    const s = store(name);
    await s.insert([candle(key(), 0)]);
    expect(await jsonRows(`SELECT DISTINCT name FROM ${name}.${MIGRATIONS_TABLE}`)).toEqual([
      { name: '0001_canonical_candles_1m' },
    ]);
  });

  it('creates canonical_candles_1m as a ReplacingMergeTree(version) ordered by (instrument_key, ts_open)', async () => {
    const name = db('schema');
    await store(name).migrate();
    const [t] = await jsonRows(
      `SELECT engine, sorting_key, primary_key, partition_key FROM system.tables ` +
        `WHERE database = '${name}' AND name = '${CANDLES_TABLE}'`,
    );
    expect(t).toEqual({
      engine: 'ReplacingMergeTree',
      sorting_key: 'instrument_key, ts_open',
      primary_key: 'instrument_key, ts_open',
      partition_key: "toYYYYMM(toDateTime(intDiv(ts_open, 1000), 'UTC'))",
    });
    const ddl = await server.query(`SHOW CREATE TABLE ${name}.${CANDLES_TABLE} FORMAT TabSeparatedRaw`);
    expect(ddl).toContain('ENGINE = ReplacingMergeTree(version)');
    expect(ddl).toContain('ORDER BY (instrument_key, ts_open)');
    expect(ddl).toMatch(/`?ts_open`? UInt64/);
    expect(ddl).toMatch(/`?volume_quote`? Nullable\(Float64\)/);
  });

  it('never shows duplicates that are not merged yet; the latest write wins before and after a merge', async () => {
    const name = db('dups');
    const s = store(name);
    await s.migrate();
    const table = `${name}.${CANDLES_TABLE}`;
    await server.query(`SYSTEM STOP MERGES ${table}`);
    const k = key();
    await s.insert([0, 1, 2].map((i) => candle(k, i, 'ws', 100)));
    await s.insert([0, 1, 2].map((i) => candle(k, i, 'rest', 200)));
    await s.insert([candle(k, 1, 'replay', 300)]);
    const [parts] = await jsonRows(
      `SELECT count() AS n FROM system.parts WHERE database = '${name}' AND table = '${CANDLES_TABLE}' AND active`,
    );
    expect(Number(parts?.['n'])).toBe(3);
    const [raw] = await jsonRows(`SELECT count() AS n FROM ${table} WHERE instrument_key = ${sqlString(k)}`);
    expect(Number(raw?.['n'])).toBe(7);

    const expected = [candle(k, 0, 'rest', 200), candle(k, 1, 'replay', 300), candle(k, 2, 'rest', 200)];
    const check = async (): Promise<void> => {
      expect(await s.range(k, T0, T0 + 10 * M)).toEqual(expected);
      expect(await s.range(k, T0, T0 + 10 * M, 2)).toEqual(expected.slice(0, 2));
      expect(await s.last(k, 2)).toEqual(expected.slice(1));
      expect(await s.openTimes(k, T0, T0 + 10 * M)).toEqual([T0, T0 + M, T0 + 2 * M]);
      expect(await s.bounds(k)).toEqual({ first: T0, last: T0 + 2 * M, count: 3 });
      expect((await s.instruments()).filter((x) => x === k)).toEqual([k]);
    };
    await check();

    await server.query(`SYSTEM START MERGES ${table}`);
    await server.query(`OPTIMIZE TABLE ${table} FINAL`);
    const [merged] = await jsonRows(
      `SELECT count() AS n FROM ${table} WHERE instrument_key = ${sqlString(k)}`,
    );
    expect(Number(merged?.['n'])).toBe(3);
    await check();
  });

  it('round-trips every finite Float64 bit for bit, and strings as data', async () => {
    const s = store('conformance');
    const k = key();
    const bits = new Float64Array(1);
    const words = new Uint32Array(bits.buffer);
    const randomDouble = (): number => {
      do {
        words[0] = Math.floor(Math.random() * 2 ** 32);
        words[1] = Math.floor(Math.random() * 2 ** 32);
      } while (!Number.isFinite(bits[0]));
      return bits[0] ?? 0;
    };
    const price = (): number => Number((Math.random() * 100_000).toFixed(Math.floor(Math.random() * 10)));
    const special = [0, -0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1 + 0.2];
    const cs: Candle[] = Array.from({ length: 3000 }, (_, i) => ({
      ...candle(k, i),
      symbol: i % 2 === 0 ? 'X\'); DROP TABLE t; --\\\u0001\t\n"日本😀\u2028' : '',
      marketId: i % 2 === 0 ? Number.MAX_SAFE_INTEGER : -(2 ** 40),
      open: special[i] ?? randomDouble(),
      high: randomDouble(),
      low: price(),
      close: price(),
      volumeBase: randomDouble(),
      volumeQuote: i % 5 === 0 ? null : price(),
    }));
    await s.insert(cs);
    const back = await s.range(k, T0, T0 + 3000 * M);
    expect(back).toHaveLength(3000);
    const mismatches = back.filter(
      (c, i) =>
        !(['open', 'high', 'low', 'close', 'volumeBase', 'volumeQuote'] as const).every((f) =>
          Object.is(c[f], cs[i]?.[f]),
        ),
    );
    expect(mismatches).toEqual([]);
    expect(back).toEqual(cs);
  });

  it('escapes instrument keys and strings exactly as the server reads them', async () => {
    const nasty = [
      "x' OR 1=1 --",
      "\\'; DROP TABLE conformance.canonical_candles_1m; --",
      'a\\',
      'tab\there\nnl\r\0nul\b\f',
      String.fromCharCode(...Array.from({ length: 128 }, (_, i) => i)),
      '日本語 😀 \u2028 \u00ff',
      '{s:String} ? $1 %s',
    ];
    for (const v of nasty) {
      const [row] = await jsonRows(`SELECT ${sqlString(v)} AS s`);
      expect(row?.['s']).toBe(v);
    }
    const s = store('conformance');
    await s.migrate();
    for (const v of nasty) {
      expect(await s.range(v, 0, Infinity)).toEqual([]);
      expect(await s.bounds(v)).toBeNull();
    }
    const k = `${key()}'\\`;
    await s.insert([candle(k, 0)]);
    expect(await s.range(k, -Infinity, Infinity)).toEqual([candle(k, 0)]);
    expect(await s.instruments()).toContain(k);
  });

  it('inserts 10,000 candles in one call (rate is logged)', async () => {
    const s = store('conformance');
    const k = key();
    const cs = Array.from({ length: 10_000 }, (_, i) => candle(k, i));
    const t = performance.now();
    await s.insert(cs);
    const ms = performance.now() - t;
    console.info(`inserted 10,000 candles in ${ms.toFixed(0)} ms (${Math.round(10_000 / (ms / 1000))}/s)`);
    expect(await s.bounds(k)).toEqual({ first: T0, last: T0 + 9999 * M, count: 10_000 });
    const r = performance.now();
    expect(await s.range(k, T0, T0 + 10_000 * M)).toHaveLength(10_000);
    console.info(`read 10,000 candles back in ${(performance.now() - r).toFixed(0)} ms`);
  });

  it('refuses bad candles with an InvalidArgumentError before sending anything', async () => {
    const s = store('conformance');
    const k = key();
    const bad: Candle[] = [
      { ...candle(k, 0), open: Number.NaN },
      { ...candle(k, 0), volumeQuote: Infinity },
      { ...candle(k, 0), tsOpen: -1 },
      { ...candle(k, 0), tsOpen: 1.5 },
      { ...candle(k, 0), marketId: 2 ** 60 },
      { ...candle(k, 0), symbol: 'a\ud800' },
      { ...candle(k, 0), origin: 'other' as Candle['origin'] },
    ];
    for (const c of bad) await expect(s.insert([candle(k, 1), c])).rejects.toThrow(InvalidArgumentError);
    expect(await s.bounds(k)).toBeNull();
  });

  it('names CLICKHOUSE_URL in configuration errors and never echoes a password', () => {
    for (const url of [
      'not a url',
      'redis://127.0.0.1:6379',
      'http://u:s3cret@h:8123/bad-db',
      'http://h:8123/?x=1',
    ]) {
      let err: unknown;
      try {
        createClickHouseStore({ url });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key).toBe('CLICKHOUSE_URL');
      expect((err as ConfigError).message).not.toContain('s3cret');
    }
    expect(() => createClickHouseStore({ url: server.url, database: 'no-dash' })).toThrow(ConfigError);
  });

  it('takes the database from the URL path, and is closed for good after close()', async () => {
    const name = db('path');
    const s = createClickHouseStore({ url: `${server.url}/${name}` });
    await s.migrate();
    expect(await jsonRows(`SELECT name FROM system.tables WHERE database = '${name}' ORDER BY name`)).toEqual(
      [{ name: CANDLES_TABLE }, { name: MIGRATIONS_TABLE }],
    );
    await s.close();
    await expect(s.bounds(key())).rejects.toThrow(ClosedError);
    await expect(s.insert([])).rejects.toThrow(ClosedError);
  });
});
