/** The entries the bench publishes: 1m candles with the contract's 15 fields, built before any timing. */
import type { XAddOptions } from '@redis/client/dist/lib/commands/XADD.js';
import { mulberry32 } from '../../util/prng.js';

/** Candle retention by default (7 days of 1m candles, docs/contracts.md), applied by both sides. */
const MAXLEN = 10_080;
export const RAW_TRIM: XAddOptions = {
  TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: MAXLEN },
};
const CANDLE_BASE_MS = Date.UTC(2026, 1, 10, 0, 0, 0); // 2026-02-10T00:00:00.000Z
const MINUTE_MS = 60_000;

/** One XADD of the bench: fields already built, so payload construction is never timed. */
export interface BenchItem {
  readonly stream: string;
  readonly id: string;
  readonly fields: Record<string, string>;
}

/** `md.candles.1m.bench:spot:S<n>`: catalog candle streams, so the producer applies candle retention itself. */
export function benchStreamNames(count: number): string[] {
  return Array.from({ length: count }, (_, n) => `md.candles.1m.bench:spot:S${n}`);
}

/**
 * `count` candles, entry k on stream k % streams, so each stream gets consecutive minutes and its
 * explicit IDs ascend (an explicit ID at or below the stream top would be a duplicate, not an add).
 */
export function makeCandles(count: number, names: readonly string[]): BenchItem[] {
  const rand = mulberry32(2); // a fixed RNG seed: the same payloads every run
  const items = new Array<BenchItem>(count);
  for (let k = 0; k < count; k++) {
    const s = k % names.length;
    items[k] = candle(
      names[s] as string,
      s,
      CANDLE_BASE_MS + Math.floor(k / names.length) * MINUTE_MS,
      k,
      rand,
    );
  }
  return items;
}

/** One 1m candle with the 15 contract fields (docs/contracts.md), all strings. */
function candle(stream: string, s: number, tsOpen: number, k: number, rand: () => number): BenchItem {
  const symbol = `S${s}`;
  const open = 100 + s + rand() * 10;
  const close = open * (1 + (rand() - 0.5) * 0.01);
  const high = Math.max(open, close) * (1 + rand() * 0.002);
  const low = Math.min(open, close) * (1 - rand() * 0.002);
  const volume = rand() * 1000;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const fields: Record<string, string> = {
    schema_version: '1',
    market_id: 'bench:spot',
    symbol,
    instrument_key: `bench:spot:${symbol}`,
    ts_open: iso(tsOpen),
    ts_close: iso(tsOpen + MINUTE_MS - 1),
    open: open.toFixed(8),
    high: high.toFixed(8),
    low: low.toFixed(8),
    close: close.toFixed(8),
    volume_base: volume.toFixed(8),
    volume_quote: (volume * close).toFixed(8),
    source: 'bench',
    ingested_at: iso(tsOpen + MINUTE_MS + 250),
    ingest_id: `bench-${k.toString(16).padStart(12, '0')}`,
  };
  return { stream, id: `${tsOpen}-0`, fields };
}

export function toBatches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
