/**
 * Which stores a process uses: the relational database (PostgreSQL `DATABASE_URL`, else embedded PGlite)
 * always, and for candle history ClickHouse when `CLICKHOUSE_URL` is set (production), else
 * the relational database.
 */
import type { Logger } from '../util/log.js';
import { openRelationalDb, type RelationalDb } from './open-db.js';
import { createClickHouseStore } from '../history/clickhouse/store.js';
import type { CandleStore } from '../history/store.js';
import { disposable } from './stack.js';

export interface StoreSelection {
  readonly clickhouseUrl?: string | undefined;
  readonly databaseUrl?: string | undefined;
  /** Embedded state directory (`data_dir`, default `.marketbus`). */
  readonly dataDir: string;
}

export function storeSelectionFromEnv(dataDir: string, env: NodeJS.ProcessEnv = process.env): StoreSelection {
  return {
    clickhouseUrl: env['CLICKHOUSE_URL'] || undefined,
    databaseUrl: env['DATABASE_URL'] || undefined,
    dataDir,
  };
}

export interface Stores extends AsyncDisposable {
  readonly db: RelationalDb;
  readonly candles: CandleStore;
  /** Close both (same as `[Symbol.asyncDispose]()`). Idempotent. */
  close(): Promise<void>;
}

export interface StoresOptions {
  /** Which databases (see `storeSelectionFromEnv`). */
  readonly selection: StoreSelection;
  readonly log: Logger;
}

/** Open and migrate the stores of a service (see `openStores`). */
export function startStores(o: StoresOptions): Promise<Stores> {
  return openStores(o.selection, o.log);
}

/** Open and migrate the relational database and the candle store. */
export async function openStores(sel: StoreSelection, log: Logger): Promise<Stores> {
  const db = openRelationalDb({ databaseUrl: sel.databaseUrl, dataDir: sel.dataDir }, log);
  try {
    await db.migrate();
    const candles = sel.clickhouseUrl ? createClickHouseStore({ url: sel.clickhouseUrl }) : db.candles;
    if (candles !== db.candles) await candles.migrate();
    log.info({ db: db.kind, history: candles.kind }, 'stores ready');
    const close = disposable(async () => {
      if (candles !== db.candles) await candles.close();
      await db.close();
    });
    return { db, candles, close: close.close, [Symbol.asyncDispose]: close.close };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Only the candle store (closing it closes whatever was opened for it). */
export async function openCandleStore(sel: StoreSelection, log: Logger): Promise<CandleStore> {
  const stores = await openStores(sel, log);
  const c = stores.candles;
  return {
    kind: c.kind,
    migrate: () => c.migrate(),
    insert: (x) => c.insert(x),
    range: (k, f, t, l) => c.range(k, f, t, l),
    last: (k, n, b) => c.last(k, n, b),
    openTimes: (k, f, t) => c.openTimes(k, f, t),
    bounds: (k) => c.bounds(k),
    instruments: () => c.instruments(),
    close: () => stores.close(),
  };
}
