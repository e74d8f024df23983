/**
 * The `replay` source: candles or ticks from a file, published in order at a chosen speed.
 *
 * Formats (detected from the first non-empty line; `format` can insist on one):
 * - CSV without a header: the Binance kline layout `open_time, open, high, low, close, volume,
 *   close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore` (at least the
 *   first six columns).
 * - CSV with a header naming the columns (Binance's own header among them): `ts_open`/`open_time`,
 *   `ts_close`/`close_time` (optional), `open`, `high`, `low`, `close`, `volume_base`/`volume`,
 *   `volume_quote`/`quote_volume` (optional), `instrument_key` (optional), `market_id` (optional). A
 *   header with `bid` and `ask` (and `ts`) makes a tick CSV instead.
 * - JSON lines: candles with the contract's field names (`instrument_key`, `market_id`, `ts_open`,
 *   `ts_close`, `open`, `high`, `low`, `close`, `volume_base`, `volume_quote`; camelCase works too), or
 *   ticks `{"instrument_key","bid","ask","ts"}` (`tick_ts`, `ts_ms` also accepted). Numbers may be
 *   JSON numbers or numeric strings.
 *
 * Times: ISO-8601 (UTC unless it names a zone) or epoch numbers whose unit is told by magnitude:
 * seconds, milliseconds, microseconds (Binance's dumps since 2025) or nanoseconds, whichever puts the
 * instant between 2000-01-01 and 2100-01-01; anything else is a bad timestamp. A candle's interval is
 * `ts_close - ts_open` (Binance's `close_time` is one millisecond short of the next open; both forms are
 * accepted) and must be 1m or 5m; without a close time it is `timeframe`. `ts_open` must be aligned
 * to the interval.
 *
 * The instrument key comes from the row, else from `instrumentKey`. Rows that cannot be used (not a
 * number, missing field, bad timestamp, high/low not enclosing open/close, invalid key) and rows out of
 * order (a candle not after the previous candle of its instrument and timeframe, a tick older than the
 * previous tick of its instrument) are reported as `invalid` with their line number and skipped.
 *
 * Pacing: with `speed` N, N× real time between consecutive event times (a candle's `tsClose`, a tick's
 * `tsMs`; never backwards). The schedule is anchored at the first event, so the average rate is right
 * even when single waits are short; after the consumer has held the replay up by more than a second
 * the schedule restarts from the current event instead of bursting to catch up. `speed` 0: no waits.
 *
 * The file is read as a stream (node:readline), one line at a time as the consumer asks for events.
 *
 * The pieces: `options.ts` (checked options), `format.ts` (the file sample and format detection),
 * `fields.ts` (field names and aliases), `csv.ts` (CSV lines), `values.ts` (numbers and times),
 * `rows.ts` (a line → a candle or a tick), `pacing.ts` (the speed schedule); this file is the source.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { sleep } from '../../../util/sleep.js';
import { errorMessage } from '../../../util/errors.js';
import type { MarketSource, SourceEvent } from '../../types.js';
import { resolveReplay, type ReplaySourceOptions, type ResolvedReplay } from './options.js';
import { ReplayPacer } from './pacing.js';
import { parseCsvRow, parseJsonRow, type ParsedLine } from './rows.js';
import { RowError } from './values.js';

/** `raw` of an invalid row is cut to this many characters. */
const RAW_MAX = 500;

async function* replay(r: ResolvedReplay, signal: AbortSignal): AsyncGenerator<SourceEvent, void, undefined> {
  if (signal.aborted) return;
  const input = createReadStream(r.file, { highWaterMark: 64 * 1024 });
  const rl = createInterface({ input, crlfDelay: Infinity });
  let readError: unknown = null;
  input.on('error', (err) => {
    readError = err;
    rl.close();
  });
  const onAbort = (): void => {
    rl.close();
    input.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });

  const last = new Map<string, number>();
  const counts = { candles: 0, ticks: 0, invalid: 0 };
  let lineNo = 0;
  let done = 0;
  let reported = 0;
  const reportEvery = Math.max(1, r.size / 200);
  const pacer = r.speed > 0 ? new ReplayPacer(r.speed) : null;

  const invalid = (reason: string, line: string): SourceEvent => {
    counts.invalid += 1;
    return { kind: 'invalid', reason: `line ${lineNo}: ${reason}`, raw: line.slice(0, RAW_MAX) };
  };

  try {
    r.onProgress?.(0, r.size);
    yield { kind: 'state', state: 'STREAM', reason: `replaying ${basename(r.file)}` };
    let headerPending = r.layout.kind === 'csv' && r.layout.header;
    for await (const rawLine of rl) {
      if (signal.aborted) return;
      lineNo += 1;
      done = Math.min(r.size, done + Buffer.byteLength(rawLine, 'utf8') + 1);
      if (r.onProgress && done - reported >= reportEvery) {
        reported = done;
        r.onProgress(done, r.size);
      }
      const line = lineNo === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine;
      if (line.trim() === '') continue;
      if (headerPending) {
        headerPending = false;
        continue;
      }
      let parsed: ParsedLine;
      try {
        parsed =
          r.layout.kind === 'csv' ? parseCsvRow(r.layout, line, r.defaults) : parseJsonRow(line, r.defaults);
      } catch (err) {
        if (!(err instanceof RowError)) throw err;
        yield invalid(err.message, line);
        continue;
      }
      // Order per instrument (and timeframe for candles).
      let eventTime: number;
      if (parsed.kind === 'candle') {
        const c = parsed.candle;
        const key = `c|${c.timeframe}|${c.instrumentKey}`;
        const prev = last.get(key);
        if (prev !== undefined && c.tsOpen <= prev) {
          yield invalid(
            c.tsOpen === prev
              ? `out of order: duplicate candle ${c.instrumentKey} ${c.timeframe} ts_open ${new Date(c.tsOpen).toISOString()}`
              : `out of order: candle ${c.instrumentKey} ${c.timeframe} ts_open ${new Date(c.tsOpen).toISOString()} is before ${new Date(prev).toISOString()}`,
            line,
          );
          continue;
        }
        last.set(key, c.tsOpen);
        eventTime = c.tsClose;
      } else {
        const t = parsed.tick;
        const key = `t|${t.instrumentKey}`;
        const prev = last.get(key);
        if (prev !== undefined && t.tsMs < prev) {
          yield invalid(
            `out of order: tick ${t.instrumentKey} ts ${new Date(t.tsMs).toISOString()} is before ${new Date(prev).toISOString()}`,
            line,
          );
          continue;
        }
        last.set(key, t.tsMs);
        eventTime = t.tsMs;
      }
      if (pacer !== null) {
        const wait = pacer.delay(eventTime, performance.now());
        if (wait > 0) await sleep(wait, signal);
        if (signal.aborted) return;
      }
      if (parsed.kind === 'candle') {
        counts.candles += 1;
        yield { kind: 'candle', candle: parsed.candle };
      } else {
        counts.ticks += 1;
        yield { kind: 'tick', tick: parsed.tick };
      }
    }
  } catch (err) {
    if (signal.aborted) return;
    readError ??= err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    rl.close();
    input.destroy();
  }
  if (signal.aborted) return;
  if (readError !== null) {
    yield {
      kind: 'state',
      state: 'DISCONNECTED',
      reason: `reading ${r.file} failed at line ${lineNo}: ${errorMessage(readError)}`,
    };
    return;
  }
  r.onProgress?.(r.size, r.size);
  yield {
    kind: 'state',
    state: 'IDLE',
    reason: `replay of ${basename(r.file)} finished: ${counts.candles} candles, ${counts.ticks} ticks, ${counts.invalid} invalid rows`,
  };
}

/**
 * A source that replays a file. Checks the options, that the file can be read and its format at once
 * (ConfigError naming the key); `instruments` are the `instrumentKey` option and the keys found in the
 * first 64 KiB of the file (the whole file is not read up front).
 */
export function createReplaySource(opts: ReplaySourceOptions): MarketSource {
  const r = resolveReplay(opts);
  return {
    name: r.name,
    instruments: r.instruments,
    events: (signal: AbortSignal): AsyncIterable<SourceEvent> => replay(r, signal),
  };
}
