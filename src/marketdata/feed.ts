/**
 * The feed service: sources -> one bounded supervisor queue -> sinks (candles with the publish gate, 5m
 * bars, the best-effort publisher and any extra candle sinks; price snapshots; status). One pump per
 * source (one per venue, docs/contracts.md §8), each event tagged with its source; a full queue stops
 * pulling from every source (back-pressure) instead of growing or dropping. Each source has its own
 * status, `md.status.<source>`, and its own `source` label on the metrics; gate, bars, snapshots and
 * publisher are shared. `close()` stops every source, processes what is queued, flushes the publisher
 * for a bounded time and publishes a last status per source. Idempotent.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
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
import { ConfigError, InvalidArgumentError } from '../util/errors.js';
import type { Candle } from '../contracts/candle.js';
import { candleProblem, tickProblem } from './validate.js';

export interface FeedServiceOptions {
  /**
   * Where ticks and candles come from, when there is one source. Give this or `sources`.
   * @defaultValue none
   */
  readonly source?: MarketSource | undefined;
  /**
   * The sources, one per venue; their names must differ (each is a status stream and a metrics label).
   * Give this or `source`.
   * @defaultValue none
   */
  readonly sources?: readonly MarketSource[] | undefined;
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

/** Longest stretch of event handling (ms of real time) before the feed gives the event loop a turn. */
const PROCESS_YIELD_EVERY_MS = 8;

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

/** One source of the feed with what is kept per source. */
interface Lane {
  readonly source: MarketSource;
  readonly name: string;
  readonly status: FeedStatus;
  readonly known: ReadonlySet<string>;
  ended: boolean;
}

/** An event as queued: tagged with its source. */
interface Tagged {
  readonly lane: Lane;
  readonly ev: SourceEvent;
}

export class FeedService {
  private readonly queue: BoundedQueue<Tagged>;
  private readonly abort = new AbortController();
  private readonly gate = new PublishGate();
  private readonly bars = new FiveMinuteBars();
  private readonly publisher: CandlePublisher | null;
  private readonly snapshots: PriceSnapshots;
  private readonly lanes: readonly Lane[];
  private readonly ingestId = randomUUID();
  private readonly lastWarn = new Map<string, number>();
  private tasks: Promise<void>[] = [];
  private closing: Promise<void> | undefined;
  private drainDeadline = Number.POSITIVE_INFINITY;
  invalidCount = 0;

  private readonly o: WithDefaults<FeedServiceOptions, typeof FEED_SERVICE_DEFAULTS>;

  constructor(opts: FeedServiceOptions) {
    const o = withDefaults(FEED_SERVICE_DEFAULTS, opts);
    this.o = o;
    this.queue = new BoundedQueue(o.queueCapacity);
    this.lanes = lanesOf(o.source, o.sources, o.staleAfterMs);
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
  }

  /** True once every source is finite (replay) and has delivered everything, and it was processed. */
  get finished(): boolean {
    return this.lanes.every((l) => l.ended) && this.queue.depth === 0;
  }

  /** The names of the sources, in order (`md.status.<name>` each). */
  get sourceNames(): readonly string[] {
    return this.lanes.map((l) => l.name);
  }

  /**
   * The status of one source.
   * @param source its name; the first source when omitted
   */
  status(source?: string): FeedStatusSnapshot {
    const lane = source === undefined ? this.lanes[0] : this.lanes.find((l) => l.name === source);
    if (!lane) throw new InvalidArgumentError('source', `no source ${JSON.stringify(source)} in this feed`);
    return lane.status.snapshot();
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
    const keys = this.lanes.flatMap((l) => [...l.known]);
    if (this.o.redis) {
      await this.gate.prime(
        this.o.redis,
        keys.flatMap((k) => [streams.candles('1m', k), streams.candles('5m', k)]),
      );
    }
    const signal = this.abort.signal;
    this.tasks = [
      this.pumps(signal),
      this.process(),
      this.publisher?.run(signal, () => this.drainDeadline) ?? Promise.resolve(),
      this.every(this.o.priceSnapIntervalMs, signal, () =>
        this.snapshots.cycle(Date.now()).then(() => undefined),
      ),
      this.every(this.o.statusIntervalMs, signal, () => this.publishStatus()),
    ];
    this.o.log.info(
      { sources: this.sourceNames, instruments: keys.length, publishing: this.publisher !== null },
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

  /** Every source's pump; the queue closes when the last one is done. */
  private async pumps(signal: AbortSignal): Promise<void> {
    await Promise.allSettled(this.lanes.map((l) => this.pump(l, signal)));
    this.queue.close();
  }

  /** Pull from one source into the queue; waiting on a full queue is the back-pressure. */
  private async pump(lane: Lane, signal: AbortSignal): Promise<void> {
    try {
      for await (const ev of lane.source.events(signal)) {
        await this.queue.push({ lane, ev });
        this.o.metrics.queueEnqueued.set(this.queue.enqueued);
      }
      lane.ended = true;
    } catch (err) {
      if (!signal.aborted)
        this.o.log.error({ source: lane.name, err: errorMessage(err) }, 'feed source failed');
    }
  }

  private async process(): Promise<void> {
    let lastYieldAt = performance.now();
    for (;;) {
      // A queue that never runs dry resolves every shift as a microtask, which would starve I/O
      // (Redis replies, the publisher's timers, the sources' sockets): give the event loop a turn.
      if (performance.now() - lastYieldAt >= PROCESS_YIELD_EVERY_MS) {
        await yieldToEventLoop();
        lastYieldAt = performance.now();
      }
      const item = await this.queue.shift();
      if (item === undefined) return;
      try {
        this.handle(item.lane, item.ev);
      } catch (err) {
        this.warn('handler', 'feed event handling failed', {
          err: errorMessage(err),
          source: item.lane.name,
          kind: item.ev.kind,
        });
      }
      this.o.metrics.queueDepth.set(this.queue.depth);
      this.o.metrics.queueProcessed.set(this.queue.dequeued);
      this.o.metrics.backpressureEvents.set(this.queue.backpressureEvents);
    }
  }

  private handle(lane: Lane, ev: SourceEvent): void {
    const source = lane.name;
    switch (ev.kind) {
      case 'candle': {
        const problem = candleProblem(ev.candle, lane.known);
        if (problem) return this.invalid(lane, problem, JSON.stringify(ev.candle));
        this.o.metrics.candlesReceived.inc({
          source,
          origin: ev.candle.origin,
          timeframe: ev.candle.timeframe,
        });
        lane.status.onCandle(ev.candle.instrumentKey, ev.candle.tsOpen);
        this.admit(ev.candle);
        if (ev.candle.timeframe === '1m') for (const bar of this.bars.add(ev.candle)) this.admit(bar);
        return;
      }
      case 'tick': {
        const problem = tickProblem(ev.tick, lane.known);
        if (problem) return this.invalid(lane, problem, JSON.stringify(ev.tick));
        this.o.metrics.ticksReceived.inc({ source });
        lane.status.onTick(ev.tick.instrumentKey, ev.tick.bid, ev.tick.ask);
        this.snapshots.onTick(ev.tick);
        this.evaluateStatus(lane);
        return;
      }
      case 'invalid':
        return this.invalid(lane, ev.reason, ev.raw);
      case 'rejected': {
        if (!lane.known.has(ev.instrumentKey))
          return this.invalid(lane, 'rejected notice for an instrument of no source', ev.instrumentKey);
        // The instrument's config is wrong for this venue; the others go on (docs/contracts.md §8).
        const err = new ConfigError(ev.configKey, `${ev.instrumentKey}: ${ev.reason}`);
        this.o.log.error(
          { code: err.code, key: ev.configKey, source, instrument: ev.instrumentKey, reason: ev.reason },
          err.message,
        );
        lane.status.onNotice(ev);
        this.evaluateStatus(lane);
        return;
      }
      case 'state':
      case 'market':
      case 'throttle':
        lane.status.onNotice(ev);
        if (ev.kind === 'throttle') {
          this.o.metrics.historyThrottled.set({ source }, ev.throttled ? 1 : 0);
          this.o.metrics.backoffSeconds.set({ source }, ev.backoffMs / 1000);
        }
        this.evaluateStatus(lane);
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

  private invalid(lane: Lane, reason: string, raw: string): void {
    this.invalidCount++;
    this.o.metrics.invalidInput.inc({ source: lane.name });
    this.warn(`invalid:${lane.name}:${reason.slice(0, 40)}`, 'invalid input from the source dropped', {
      source: lane.name,
      reason,
      raw: raw.slice(0, 300),
    });
  }

  private evaluateStatus(lane: Lane): void {
    const changed = lane.status.evaluate();
    if (changed) {
      const s = lane.status.snapshot();
      this.o.metrics.setState(lane.name, changed);
      this.o.log.info(
        { source: s.source, state: s.state, since: new Date(s.stateSince).toISOString(), reason: s.reason },
        'feed state changed',
      );
    }
  }

  private async publishStatus(): Promise<void> {
    await Promise.all(this.lanes.map((l) => this.publishLaneStatus(l)));
  }

  private async publishLaneStatus(lane: Lane): Promise<void> {
    this.evaluateStatus(lane);
    const s = lane.status.snapshot();
    const name = lane.name;
    this.o.metrics.tickSilence.set({ source: name }, s.tickSilenceSeconds);
    const counts: Record<string, number> = { ok: 0, waiting: 0, stale: 0, stopped: 0 };
    for (const i of Object.values(s.instruments)) counts[i.state] = (counts[i.state] ?? 0) + 1;
    for (const [state, n] of Object.entries(counts))
      this.o.metrics.instruments.set({ source: name, state }, n);
    if (!this.o.producer) return;
    try {
      await this.o.producer.publish(streams.feedStatus(name), statusFields(s, this.supervisorCounters()));
    } catch (err) {
      this.warn(`status:${name}`, 'status publish failed', { source: name, err: errorMessage(err) });
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

/** The lanes of the sources given; names must differ (each is a status stream and a label). */
function lanesOf(
  one: MarketSource | undefined,
  many: readonly MarketSource[] | undefined,
  staleAfterMs: number,
): Lane[] {
  const sources = many ?? (one ? [one] : []);
  if (sources.length === 0 || (one && many))
    throw new InvalidArgumentError('sources', 'give the feed one source or a list of sources');
  const names = new Set<string>();
  return sources.map((source) => {
    if (names.has(source.name)) throw new InvalidArgumentError('sources', `two sources named ${source.name}`);
    names.add(source.name);
    const keys = source.instruments.map((i) => i.instrumentKey);
    return {
      source,
      name: source.name,
      status: new FeedStatus(source.name, keys, staleAfterMs),
      known: new Set(keys),
      ended: false,
    };
  });
}
