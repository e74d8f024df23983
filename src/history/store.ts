/**
 * The candle history store: the historical source of truth for closed 1m candles (docs/contracts.md §6:
 * ClickHouse `canonical_candles_1m` in production; PostgreSQL; PGlite embedded). Every adapter passes
 * the same conformance suite (test/conformance/candle-store.ts).
 *
 * Only 1m candles are stored; longer timeframes are built from them on read (see bars.ts).
 */
import type { Candle } from '../contracts/candle.js';

export type StoreKind = 'pglite' | 'postgres' | 'clickhouse';

export interface StoredRange {
  /** Open time of the first stored candle, epoch ms. */
  readonly first: number;
  /** Open time of the last stored candle, epoch ms. */
  readonly last: number;
  readonly count: number;
}

export interface CandleStore {
  readonly kind: StoreKind;
  /** Apply pending schema migrations (idempotent; safe to run from several processes). */
  migrate(): Promise<void>;
  /**
   * Insert closed 1m candles. The same (instrument, ts_open) again is one row: the later write wins
   * (a REST correction replaces a live candle). Candles of other timeframes are refused (InvalidArgumentError).
   */
  insert(candles: readonly Candle[]): Promise<void>;
  /** 1m candles with `fromMs <= ts_open < toMs`, ascending by open time, at most `limit` (default all). */
  range(instrumentKey: string, fromMs: number, toMs: number, limit?: number): Promise<Candle[]>;
  /** The last `count` 1m candles with `ts_open < beforeMs` (default: all), ascending by open time. */
  last(instrumentKey: string, count: number, beforeMs?: number): Promise<Candle[]>;
  /** Open times stored in `[fromMs, toMs)`, ascending (what the gap ledger compares against). */
  openTimes(instrumentKey: string, fromMs: number, toMs: number): Promise<number[]>;
  /** First/last open time and count of an instrument, or null when it has none. */
  bounds(instrumentKey: string): Promise<StoredRange | null>;
  /** Instrument keys with at least one candle, sorted. */
  instruments(): Promise<string[]>;
  /** Close connections. Idempotent. */
  close(): Promise<void>;
}
