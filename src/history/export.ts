/** Export stored candles as CSV or JSON lines, streamed page by page. */
import { candleCodec, CANDLE_FIELDS } from '../contracts/market-data.js';
import type { CandleStore } from './store.js';

export type ExportFormat = 'csv' | 'jsonl';

/** The contract's candle fields that are facts about the candle (not about one ingestion). */
export const EXPORT_FIELDS = CANDLE_FIELDS.filter(
  (f) => f !== 'schema_version' && f !== 'ingested_at' && f !== 'ingest_id',
);

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/**
 * Write the 1m candles of `[fromMs, toMs)` with the contract's field names (docs/contracts.md §6,
 * less the per-ingestion ones) through `write`,
 * which may return a promise to slow the export down (back-pressure). Returns the number of candles.
 */
export async function exportCandles(
  store: CandleStore,
  instrumentKey: string,
  fromMs: number,
  toMs: number,
  format: ExportFormat,
  write: (chunk: string) => Promise<void> | void,
  pageSize = 5000,
): Promise<number> {
  let n = 0;
  let cursor = fromMs;
  if (format === 'csv') await write(`${EXPORT_FIELDS.join(',')}\n`);
  for (;;) {
    const page = await store.range(instrumentKey, cursor, toMs, pageSize);
    if (page.length === 0) break;
    const lines = page.map((c) => {
      const all = candleCodec.encode({ candle: c, ingestedAt: c.tsClose, ingestId: '' });
      const f = Object.fromEntries(EXPORT_FIELDS.map((k) => [k, all[k] ?? '']));
      return format === 'csv' ? EXPORT_FIELDS.map((k) => csvCell(f[k] ?? '')).join(',') : JSON.stringify(f);
    });
    await write(`${lines.join('\n')}\n`);
    n += page.length;
    const last = page[page.length - 1];
    if (page.length < pageSize || !last) break;
    cursor = last.tsOpen + 1;
  }
  return n;
}
