/**
 * The batching insert buffer between the feed and the history store. `offer()` never waits and never
 * throws (the feed must not stall on the database); candles are written in batches every
 * `flushIntervalMs` or when `batchSize` are waiting; a failed write is retried with backoff, in order;
 * past `capacity` waiting candles, new ones are dropped and counted. Redis plays no part here, so Redis
 * trouble never stops these writes (publishing is best effort, docs/contracts.md §6).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { Backoff } from '../util/backoff.js';
import { sleep } from '../util/sleep.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { Candle } from '../contracts/candle.js';
import type { CandleStore } from './store.js';

export interface HistoryWriterOptions {
  /**
   * Longest time a candle waits before its batch is written, ms.
   * @defaultValue 1000
   */
  readonly flushIntervalMs?: number | undefined;
  /**
   * Candles per insert, candles.
   * @defaultValue 1000
   */
  readonly batchSize?: number | undefined;
  /**
   * Most candles waiting, candles; past it new ones are dropped and counted.
   * @defaultValue 200000
   */
  readonly capacity?: number | undefined;
  /**
   * Gets the writer's metrics.
   * @defaultValue none (no metrics)
   */
  readonly registry?: Registry | undefined;
  /**
   * Where write failures are logged.
   * @defaultValue none (not logged)
   */
  readonly log?: Logger | undefined;
}

/** The defaults of {@link HistoryWriterOptions}, applied by the `HistoryWriter` constructor. */
export const HISTORY_WRITER_DEFAULTS = Object.freeze({
  flushIntervalMs: 1000,
  batchSize: 1000,
  capacity: 200_000,
} satisfies Partial<HistoryWriterOptions>);

export class HistoryWriter {
  private buf: Candle[] = [];
  private wake: (() => void) | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly written: Counter | undefined;
  private readonly errors: Counter | undefined;
  private readonly dropped: Counter | undefined;
  private readonly depthGauge: Gauge | undefined;
  /** Candles written since start (for tests and status). */
  writtenCount = 0;
  private readonly o: WithDefaults<HistoryWriterOptions, typeof HISTORY_WRITER_DEFAULTS>;

  constructor(
    private readonly store: CandleStore,
    opts: HistoryWriterOptions = {},
  ) {
    const o = withDefaults(HISTORY_WRITER_DEFAULTS, opts);
    this.o = o;
    const registers = o.registry ? [o.registry] : [];
    if (o.registry) {
      this.written = new Counter({
        name: 'history_candles_written_total',
        help: 'Candles written to the history store',
        registers,
      });
      this.errors = new Counter({
        name: 'history_write_errors_total',
        help: 'Failed history store writes (retried)',
        registers,
      });
      this.dropped = new Counter({
        name: 'history_candles_dropped_total',
        help: 'Candles not written because the buffer was full',
        registers,
      });
      this.depthGauge = new Gauge({
        name: 'history_write_buffer_depth',
        help: 'Candles waiting to be written',
        registers,
      });
    }
  }

  get depth(): number {
    return this.buf.length;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Queue a closed candle (1m only; others are ignored: longer timeframes are derived on read). */
  offer(c: Candle): void {
    if (c.timeframe !== '1m') return;
    if (this.buf.length >= this.o.capacity) {
      this.dropped?.inc();
      return;
    }
    this.buf.push(c);
    this.depthGauge?.set(this.buf.length);
    if (this.buf.length >= this.o.batchSize) this.wake?.();
  }

  /** Write what is waiting (retrying for up to `timeoutMs`), then stop. Idempotent. */
  close(timeoutMs = 5000): Promise<void> {
    this.closing ??= (async () => {
      this.abort.abort();
      this.wake?.();
      await this.loop;
      const deadline = Date.now() + timeoutMs;
      while (this.buf.length > 0 && Date.now() < deadline) {
        if (!(await this.flushOnce())) await sleep(200);
      }
      if (this.buf.length > 0)
        this.o.log?.error({ left: this.buf.length }, 'history writer closed with candles unwritten');
    })();
    return this.closing;
  }

  private async run(): Promise<void> {
    const backoff = new Backoff({ baseMs: 250, maxMs: 10_000, jitter: 0.3 });
    while (!this.abort.signal.aborted) {
      if (this.buf.length < this.o.batchSize) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.o.flushIntervalMs);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
      }
      if (this.buf.length === 0) continue;
      if (await this.flushOnce()) backoff.reset();
      else await sleep(backoff.next(), this.abort.signal);
    }
  }

  /** One batch; true when it was written. */
  private async flushOnce(): Promise<boolean> {
    const batch = this.buf.slice(0, this.o.batchSize);
    if (batch.length === 0) return true;
    try {
      await this.store.insert(batch);
      this.buf.splice(0, batch.length);
      this.writtenCount += batch.length;
      this.written?.inc(batch.length);
      this.depthGauge?.set(this.buf.length);
      return true;
    } catch (err) {
      this.errors?.inc();
      this.o.log?.warn(
        { err: errorMessage(err), waiting: this.buf.length },
        'history store write failed; retrying',
      );
      return false;
    }
  }
}
