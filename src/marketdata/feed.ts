/**
 * The feed service: source -> bounded supervisor queue -> sinks (candles with the publish gate, 5m
 * bars, the best-effort publisher and any extra candle sinks; price snapshots; status). A full queue
 * stops pulling from the source (back-pressure) instead of growing or dropping. `close()` stops the
 * source, processes what is queued, flushes the publisher for a bounded time and publishes a last
 * status. Idempotent.
 */
import { randomUUID } from 'node:crypto';
import { sleep } from '../util/sleep.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { streams } from '../contracts/catalog.js';
import { type Retention } from '../bus/stream-policy.js';
import type { RedisClient } from '../bus/connection.js';
import type { StreamProducer } from '../bus/producer.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { BoundedQueue } from '../util/bounded-queue.js';
import { FiveMinuteBars } from './bars.js';
import { CandlePublisher } from './candle-publisher.js';
import type { FeedMetrics } from './feed-metrics.js';
import { FeedStatus, statusFields, type FeedStatusSnapshot } from './feed-status.js';
import { PublishGate } from './publish-gate.js';
import { PriceSnapshots } from './snapshots.js';
import type { MarketSource, SourceEvent } from './types.js';
import type { Candle } from '../contracts/candle.js';
import { candleProblem, tickProblem } from './validate.js';

export interface FeedServiceOptions {
  /** Where ticks and candles come from. */
  readonly source: MarketSource;
  /** Publishes candles, snapshots and status; null disables publishing (no `live_feed.redis_streams`). */
  readonly producer: StreamProducer | null;
  /**
   * Used to prime the publish gate from the streams' last IDs.
   * @defaultValue none (gate not primed)
   */
  readonly redis?: RedisClient | undefined;
  /** The feed's metrics. */
  readonly metrics: FeedMetrics;
  /** Where the feed logs. */
  readonly log: Logger;
  /**
   * Snapshot cycle, ms (config `price_snap_interval_seconds`).
   * @defaultValue 3000
   */
  readonly priceSnapIntervalMs?: number | undefined;
  /**
   * Status publish cycle, ms.
   * @defaultValue 5000
   */
  readonly statusIntervalMs?: number | undefined;
  /**
   * No ticks for this long (market open) makes an instrument `stale` and the feed IDLE, ms.
   * @defaultValue 30000
   */
  readonly staleAfterMs?: number | undefined;
  /**
   * Supervisor queue capacity, events.
   * @defaultValue 10000
   */
  readonly queueCapacity?: number | undefined;
  /**
   * Candles kept while Redis is unreachable, candles.
   * @defaultValue 100000
   */
  readonly outboxCapacity?: number | undefined;
  /**
   * Retention of 1m candle streams: 7 days (docs/contracts.md §13).
   * @defaultValue `FEED_RETENTION_1M` (maxlen 10080 entries)
   */
  readonly retention1m?: Retention | undefined;
  /**
   * Retention of 5m candle streams: 7 days (docs/contracts.md §13).
   * @defaultValue `FEED_RETENTION_5M` (maxlen 2016 entries)
   */
  readonly retention5m?: Retention | undefined;
  /**
   * Retention of price snapshot streams: about one hour at 3 s.
   * @defaultValue `FEED_PRICE_RETENTION` (maxlen 1200 entries)
   */
  readonly priceRetention?: Retention | undefined;
  /**
   * How long close() keeps flushing candles to Redis, ms.
   * @defaultValue 5000
   */
  readonly drainMs?: number | undefined;
  /**
   * Extra consumers of every admitted closed candle (1m and 5m), e.g. the history store. Must not throw.
   * @defaultValue none
   */
  readonly candleSinks?: readonly ((c: Candle) => void)[] | undefined;
}

/** Retention of 1m candle streams: 7 days of entries. */
export const FEED_RETENTION_1M: Retention = Object.freeze({ kind: 'maxlen', maxLen: 7 * 1440 });
/** Retention of 5m candle streams: 7 days of entries. */
export const FEED_RETENTION_5M: Retention = Object.freeze({ kind: 'maxlen', maxLen: 7 * 288 });
/** Retention of price snapshot streams: about one hour at one snapshot per 3 s. */
export const FEED_PRICE_RETENTION: Retention = Object.freeze({ kind: 'maxlen', maxLen: 1200 });

/** The defaults of {@link FeedServiceOptions}, applied by the `FeedService` constructor. */
export const FEED_SERVICE_DEFAULTS = Object.freeze({
  priceSnapIntervalMs: 3000,
  statusIntervalMs: 5000,
  staleAfterMs: 30_000,
  queueCapacity: 10_000,
  outboxCapacity: 100_000,
  retention1m: FEED_RETENTION_1M,
  retention5m: FEED_RETENTION_5M,
  priceRetention: FEED_PRICE_RETENTION,
  drainMs: 5000,
} satisfies Partial<FeedServiceOptions>);

export class FeedService {
  private readonly queue: BoundedQueue<SourceEvent>;
  private readonly abort = new AbortController();
  private readonly gate = new PublishGate();
  private readonly bars = new FiveMinuteBars();
  private readonly publisher: CandlePublisher | null;
  private readonly snapshots: PriceSnapshots;
  private readonly statusTracker: FeedStatus;
  private readonly known: ReadonlySet<string>;
  private readonly ingestId = randomUUID();
  private readonly lastWarn = new Map<string, number>();
  private tasks: Promise<void>[] = [];
  private closing: Promise<void> | undefined;
  private drainDeadline = Number.POSITIVE_INFINITY;
  private sourceEnded = false;
  invalidCount = 0;

  private readonly o: WithDefaults<FeedServiceOptions, typeof FEED_SERVICE_DEFAULTS>;

  constructor(opts: FeedServiceOptions) {
    const o = withDefaults(FEED_SERVICE_DEFAULTS, opts);
    this.o = o;
    this.queue = new BoundedQueue(o.queueCapacity);
    this.known = new Set(o.source.instruments.map((i) => i.instrumentKey));
    this.publisher = o.producer
      ? new CandlePublisher(o.producer, {
          capacity: o.outboxCapacity,
          retention1m: o.retention1m,
          retention5m: o.retention5m,
          ingestId: this.ingestId,
          metrics: o.metrics,
          log: o.log,
        })
      : null;
    this.snapshots = new PriceSnapshots(o.producer, o.metrics, o.priceRetention);
    this.statusTracker = new FeedStatus(o.source.name, [...this.known], o.staleAfterMs);
  }

  /** True once a finite source (replay) has delivered everything and it was processed. */
  get finished(): boolean {
    return this.sourceEnded && this.queue.depth === 0;
  }

  status(): FeedStatusSnapshot {
    return this.statusTracker.snapshot();
  }

  supervisorCounters(): Record<string, number> {
    return {
      total_enqueued: this.queue.enqueued,
      total_processed: this.queue.dequeued,
      total_dropped: 0,
      queue_depth_total: this.queue.depth,
      backpressure_events: this.queue.backpressureEvents,
      outbox_depth: this.publisher?.depth ?? 0,
    };
  }

  async start(): Promise<void> {
    const keys = [...this.known];
    if (this.o.redis) {
      await this.gate.prime(
        this.o.redis,
        keys.flatMap((k) => [streams.candles('1m', k), streams.candles('5m', k)]),
      );
    }
    const signal = this.abort.signal;
    this.tasks = [
      this.pump(signal),
      this.process(),
      this.publisher?.run(signal, () => this.drainDeadline) ?? Promise.resolve(),
      this.every(this.o.priceSnapIntervalMs, signal, () =>
        this.snapshots.cycle(Date.now()).then(() => undefined),
      ),
      this.every(this.o.statusIntervalMs, signal, () => this.publishStatus()),
    ];
    this.o.log.info(
      { source: this.o.source.name, instruments: keys.length, publishing: this.publisher !== null },
      'feed started',
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.drainDeadline = Date.now() + this.o.drainMs;
      this.abort.abort();
      await Promise.allSettled(this.tasks);
      await this.publishStatus();
      this.o.log.info({ ...this.supervisorCounters() }, 'feed stopped');
    })();
    return this.closing;
  }

  /** Pull from the source into the queue; waiting on a full queue is the back-pressure. */
  private async pump(signal: AbortSignal): Promise<void> {
    try {
      for await (const ev of this.o.source.events(signal)) {
        await this.queue.push(ev);
        this.o.metrics.queueEnqueued.set(this.queue.enqueued);
      }
      this.sourceEnded = true;
    } catch (err) {
      if (!signal.aborted) this.o.log.error({ err: errorMessage(err) }, 'feed source failed');
    } finally {
      this.queue.close();
    }
  }

  private async process(): Promise<void> {
    for (;;) {
      const ev = await this.queue.shift();
      if (ev === undefined) return;
      try {
        this.handle(ev);
      } catch (err) {
        this.warn('handler', 'feed event handling failed', { err: errorMessage(err), kind: ev.kind });
      }
      this.o.metrics.queueDepth.set(this.queue.depth);
      this.o.metrics.queueProcessed.set(this.queue.dequeued);
      this.o.metrics.backpressureEvents.set(this.queue.backpressureEvents);
    }
  }

  private handle(ev: SourceEvent): void {
    switch (ev.kind) {
      case 'candle': {
        const problem = candleProblem(ev.candle, this.known);
        if (problem) return this.invalid(problem, JSON.stringify(ev.candle));
        this.o.metrics.candlesReceived.inc({ origin: ev.candle.origin, timeframe: ev.candle.timeframe });
        this.statusTracker.onCandle(ev.candle.instrumentKey, ev.candle.tsOpen);
        this.admit(ev.candle);
        if (ev.candle.timeframe === '1m') for (const bar of this.bars.add(ev.candle)) this.admit(bar);
        return;
      }
      case 'tick': {
        const problem = tickProblem(ev.tick, this.known);
        if (problem) return this.invalid(problem, JSON.stringify(ev.tick));
        this.o.metrics.ticksReceived.inc();
        this.statusTracker.onTick(ev.tick.instrumentKey, ev.tick.bid, ev.tick.ask);
        this.snapshots.onTick(ev.tick);
        this.evaluateStatus();
        return;
      }
      case 'invalid':
        return this.invalid(ev.reason, ev.raw);
      case 'state':
      case 'market':
      case 'throttle':
        this.statusTracker.onNotice(ev);
        if (ev.kind === 'throttle') {
          this.o.metrics.historyThrottled.set({ source: this.o.source.name }, ev.throttled ? 1 : 0);
          this.o.metrics.backoffSeconds.set({ source: this.o.source.name }, ev.backoffMs / 1000);
        }
        this.evaluateStatus();
        return;
    }
  }

  /** The publish gate: each candle once, newer than what its stream has. */
  private admit(c: Candle): void {
    if (!this.gate.admit(streams.candles(c.timeframe, c.instrumentKey), c.tsOpen)) {
      this.o.metrics.publishDuplicates.inc();
      return;
    }
    this.publisher?.offer(c);
    for (const sink of this.o.candleSinks ?? []) sink(c);
  }

  private invalid(reason: string, raw: string): void {
    this.invalidCount++;
    this.o.metrics.invalidInput.inc({ source: this.o.source.name });
    this.warn(`invalid:${reason.slice(0, 40)}`, 'invalid input from the source dropped', {
      reason,
      raw: raw.slice(0, 300),
    });
  }

  private evaluateStatus(): void {
    const changed = this.statusTracker.evaluate();
    if (changed) {
      const s = this.statusTracker.snapshot();
      this.o.metrics.setState(this.o.source.name, changed);
      this.o.log.info(
        { source: s.source, state: s.state, since: new Date(s.stateSince).toISOString(), reason: s.reason },
        'feed state changed',
      );
    }
  }

  private async publishStatus(): Promise<void> {
    this.evaluateStatus();
    const s = this.statusTracker.snapshot();
    const name = this.o.source.name;
    this.o.metrics.tickSilence.set({ source: name }, s.tickSilenceSeconds);
    const counts: Record<string, number> = { ok: 0, waiting: 0, stale: 0, stopped: 0 };
    for (const i of Object.values(s.instruments)) counts[i.state] = (counts[i.state] ?? 0) + 1;
    for (const [state, n] of Object.entries(counts))
      this.o.metrics.instruments.set({ source: name, state }, n);
    if (!this.o.producer) return;
    try {
      await this.o.producer.publish(streams.feedStatus(name), statusFields(s, this.supervisorCounters()));
    } catch (err) {
      this.warn('status', 'status publish failed', { err: errorMessage(err) });
    }
  }

  private async every(ms: number, signal: AbortSignal, fn: () => Promise<void>): Promise<void> {
    while (!signal.aborted) {
      await sleep(ms, signal);
      if (signal.aborted) return;
      try {
        await fn();
      } catch (err) {
        this.warn('loop', 'feed periodic task failed', { err: errorMessage(err) });
      }
    }
  }

  /** Warn at most once per 10 s per key, so a flood of bad input cannot flood the log. */
  private warn(key: string, msg: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - (this.lastWarn.get(key) ?? 0) < 10_000) return;
    if (this.lastWarn.size > 1000) this.lastWarn.clear();
    this.lastWarn.set(key, now);
    this.o.log.warn(fields, msg);
  }
}
