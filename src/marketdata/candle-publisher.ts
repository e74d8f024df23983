/**
 * Best-effort candle publishing (docs/contracts.md §6): Redis trouble never stops ingestion. Candles go
 * into a bounded outbox and are published in order per stream; while Redis is unreachable they wait
 * (once the outbox is full, new candles are dropped and counted), errors are logged once per outage and
 * counted per attempt, and publishing resumes by itself when Redis returns.
 */
import type { Retention } from '../bus/stream-policy.js';
import { streams } from '../contracts/catalog.js';
import { Backoff } from '../util/backoff.js';
import { sleep } from '../util/sleep.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import type { StreamProducer } from '../bus/producer.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { candleCodec, candleId } from '../contracts/market-data.js';
import type { FeedMetrics } from './feed-metrics.js';
import type { Candle } from '../contracts/candle.js';

export interface CandlePublisherOptions {
  /** Most candles waiting for Redis, candles; past it new candles are dropped and counted. */
  readonly capacity: number;
  /**
   * Candles per pipelined XADD batch, candles.
   * @defaultValue 500
   */
  readonly batchSize?: number | undefined;
  /** Retention of 1m candle streams (retention_days * 1440, or maxlen_approx). */
  readonly retention1m: Retention;
  /** Retention of 5m candle streams. */
  readonly retention5m: Retention;
  /** The contract's `ingest_id`: the ingestion's UUID. */
  readonly ingestId: string;
  /** Counts published, dropped and failed candles. */
  readonly metrics: FeedMetrics;
  /** Where publish failures are logged. */
  readonly log: Logger;
  /**
   * Wall clock for `ingested_at`, ms since epoch.
   * @defaultValue `Date.now`
   */
  readonly now?: (() => number) | undefined;
}

/** The defaults of {@link CandlePublisherOptions}, applied by the `CandlePublisher` constructor. */
export const CANDLE_PUBLISHER_DEFAULTS = Object.freeze({
  batchSize: 500,
  now: Date.now,
} satisfies Partial<CandlePublisherOptions>);

interface Pending {
  readonly stream: string;
  readonly id: string;
  readonly fields: Record<string, string>;
  readonly retention: Retention;
}

export class CandlePublisher {
  /** Outbox as an array with a moving head: taking from the front must not copy the whole array. */
  private outbox: Pending[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private failing = false;
  private readonly now: () => number;
  private readonly o: WithDefaults<CandlePublisherOptions, typeof CANDLE_PUBLISHER_DEFAULTS>;

  constructor(
    private readonly producer: StreamProducer,
    opts: CandlePublisherOptions,
  ) {
    this.o = withDefaults(CANDLE_PUBLISHER_DEFAULTS, opts);
    this.now = this.o.now;
  }

  get depth(): number {
    return this.outbox.length - this.head;
  }

  /** Queue a closed candle for publishing (never waits, never throws for Redis). */
  offer(candle: Candle): void {
    if (this.depth >= this.o.capacity) {
      // Full (Redis down for long): refuse the new candle rather than reorder the stream. The history
      // store has it, and subscriptions fill such gaps from there.
      this.o.metrics.outboxDropped.inc();
      return;
    }
    this.outbox.push({
      stream: streams.candles(candle.timeframe, candle.instrumentKey),
      id: candleId(candle),
      fields: candleCodec.encode({ candle, ingestedAt: this.now(), ingestId: this.o.ingestId }),
      retention: candle.timeframe === '1m' ? this.o.retention1m : this.o.retention5m,
    });
    this.o.metrics.outboxDepth.set(this.depth);
    this.wake?.();
  }

  /**
   * Publish until `signal` aborts; after that, keep flushing what is left until `drainUntil()` (epoch ms)
   * passes. Returns when the outbox is empty and the signal has aborted, or the drain time is up.
   */
  async run(signal: AbortSignal, drainUntil: () => number): Promise<void> {
    const backoff = new Backoff({ baseMs: 250, maxMs: 5000, jitter: 0.3 });
    for (;;) {
      if (this.depth === 0) {
        if (signal.aborted) return;
        await new Promise<void>((resolve) => {
          const onAbort = (): void => resolve();
          this.wake = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          signal.addEventListener('abort', onAbort, { once: true });
        });
        this.wake = undefined;
        continue;
      }
      if (signal.aborted && Date.now() > drainUntil()) return;
      const failed = await this.publishBatch();
      if (failed > 0) {
        await sleep(backoff.next(), signal.aborted ? undefined : signal);
      } else backoff.reset();
    }
  }

  /** Publish the head of the outbox once; failed candles go back to the head, in order. Returns how many failed. */
  private async publishBatch(): Promise<number> {
    const batch = this.outbox.slice(this.head, this.head + this.o.batchSize);
    const stop = this.o.metrics.publishDuration.startTimer();
    const outcomes = await this.producer.publishMany(batch);
    stop();
    const failed: Pending[] = [];
    let firstError: unknown;
    outcomes.forEach((r, i) => {
      if (r.status === 'added') this.o.metrics.publishTotal.inc();
      else if (r.status === 'duplicate') this.o.metrics.publishDuplicates.inc();
      else {
        this.o.metrics.publishErrors.inc();
        failed.push(batch[i] as Pending);
        firstError ??= r.error;
      }
    });
    // Failed candles stay at the front, in order: write them back just before the new head.
    this.head += batch.length - failed.length;
    for (let i = 0; i < failed.length; i++) this.outbox[this.head + i] = failed[i] as Pending;
    this.compact();
    this.o.metrics.outboxDepth.set(this.depth);
    if (failed.length > 0 && !this.failing) {
      this.failing = true;
      this.o.log.error(
        { err: errorMessage(firstError), waiting: this.depth },
        'publishing candles to Redis failed; retrying, ingestion goes on',
      );
    } else if (failed.length === 0 && this.failing) {
      this.failing = false;
      this.o.log.info({ waiting: this.depth }, 'publishing candles to Redis resumed');
    }
    return failed.length;
  }

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.outbox.length) {
      this.outbox = this.outbox.slice(this.head);
      this.head = 0;
    }
  }
}
