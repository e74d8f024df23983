/**
 * Per-user output streams (docs/contracts.md §10): `strategy.events.v1.user.<user_id>` (started, signal,
 * trade_open, trade_close, failed, stopped) and `strategy.metrics.v1.user.<user_id>` (per candle:
 * indicators, position, equity, PnL). Entries are envelopes with a JSON payload. Each output is keyed
 * by run and kind and sequenced by the candle's open time, and added with `addOnce`: a redelivered
 * candle can never produce a second output.
 */
import { z } from 'zod';
import { DEFAULT_RETENTION, streams } from '../contracts/catalog.js';
import { envelopeCodec, jsonValue, makeEnvelope, type JsonValue } from '../bus/codec.js';
import type { RedisClient } from '../bus/connection.js';
import { addOnce, addOnceMany, highWaterKey } from '../bus/monotonic.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { Candle } from '../contracts/candle.js';
import type { StrategyStep } from './engine.js';
import type { RunnerMetrics } from './runner-metrics.js';
import type { StrategyEventType } from '../contracts/strategy-events.js';

export const EVENT_SOURCE = 'strategy-runner';

/** Who an output belongs to. */
export interface RunRef {
  readonly runId: string;
  readonly strategyId: string;
  readonly strategyName: string;
  readonly userId: string;
  readonly instrumentKey: string;
  readonly timeframe: string;
}

/** Events and metrics carry JSON objects; consumers validate the fields they use. */
export const outputCodec = envelopeCodec(z.record(z.string(), jsonValue));

function candleJson(c: Candle | null): JsonValue {
  return c === null
    ? null
    : {
        ts_open: new Date(c.tsOpen).toISOString(),
        ts_close: new Date(c.tsClose).toISOString(),
        close: c.close,
        open: c.open,
        high: c.high,
        low: c.low,
      };
}

interface Output {
  readonly kind: 'events' | 'metrics';
  readonly stream: string;
  readonly key: string;
  readonly seq: number;
  readonly fields: Record<string, string>;
}

function eventOutput(
  run: RunRef,
  type: StrategyEventType,
  seq: number,
  candle: Candle | null,
  extra: Record<string, JsonValue>,
): Output {
  const payload: Record<string, JsonValue> = {
    strategy_id: run.strategyId,
    strategy_name: run.strategyName,
    run_id: run.runId,
    user_id: run.userId,
    instrument_key: run.instrumentKey,
    timeframe: run.timeframe,
    candle: candleJson(candle),
    ...extra,
  };
  return output(
    'events',
    streams.strategyEvents(run.userId),
    `${run.runId}:${type}`,
    seq,
    type,
    run,
    payload,
  );
}

function metricOutput(run: RunRef, candle: Candle, step: StrategyStep): Output {
  const payload: Record<string, JsonValue> = {
    strategy_id: run.strategyId,
    run_id: run.runId,
    instrument_key: run.instrumentKey,
    timeframe: run.timeframe,
    ts_open: new Date(candle.tsOpen).toISOString(),
    close: candle.close,
    indicators: { ...step.indicators },
    signal: step.signal,
    position: step.position,
    equity: step.equity,
    pnl: step.pnl,
    realized_pnl: step.realizedPnl,
  };
  return output(
    'metrics',
    streams.strategyMetrics(run.userId),
    `${run.runId}:metric`,
    candle.tsOpen,
    'metric',
    run,
    payload,
  );
}

function output(
  kind: Output['kind'],
  stream: string,
  key: string,
  seq: number,
  type: string,
  run: RunRef,
  payload: Record<string, JsonValue>,
): Output {
  const fields = outputCodec.encode(
    makeEnvelope(type, EVENT_SOURCE, payload, { id: `${key}:${seq}`, correlationId: run.runId }),
  );
  return { kind, stream, key, seq, fields };
}

const retentionOf = (kind: Output['kind']): (typeof DEFAULT_RETENTION)[keyof typeof DEFAULT_RETENTION] =>
  DEFAULT_RETENTION[kind === 'events' ? 'strategy-events' : 'strategy-metrics'];

/**
 * The outputs of one candle for many runs, written with one script call per user stream (in the order
 * they were added). `onNew` runs for outputs that were new (not a redelivery).
 */
export class OutputBatch {
  private readonly byStream = new Map<
    string,
    { kind: Output['kind']; items: { o: Output; onNew: (() => void) | undefined }[] }
  >();

  constructor(
    private readonly redis: RedisClient,
    private readonly metrics: RunnerMetrics,
    private readonly log: Logger,
  ) {}

  event(
    run: RunRef,
    type: StrategyEventType,
    seq: number,
    candle: Candle | null,
    extra: Record<string, JsonValue> = {},
    onNew?: () => void,
  ): void {
    this.add(eventOutput(run, type, seq, candle, extra), onNew);
  }

  metric(run: RunRef, candle: Candle, step: StrategyStep): void {
    this.add(metricOutput(run, candle, step), undefined);
  }

  get size(): number {
    let n = 0;
    for (const g of this.byStream.values()) n += g.items.length;
    return n;
  }

  private add(o: Output, onNew: (() => void) | undefined): void {
    let g = this.byStream.get(o.stream);
    if (!g) this.byStream.set(o.stream, (g = { kind: o.kind, items: [] }));
    g.items.push({ o, onNew });
  }

  /**
   * Write everything: every events stream first, then (only when they all succeeded) every metrics
   * stream. A metric marks its candle as processed, so it must never be visible without the candle's
   * events: with `fence` writing the metrics mark before the events mark, a stop that lands between
   * the two writes leaves either both outputs of a candle or only its events, never only its metric.
   * Rejects, after trying every stream of the phase, when any stream failed.
   */
  async flush(): Promise<void> {
    const now = Date.now();
    const groups = [...this.byStream];
    this.byStream.clear();
    await this.flushGroups(
      groups.filter(([, g]) => g.kind === 'events'),
      now,
    );
    await this.flushGroups(
      groups.filter(([, g]) => g.kind === 'metrics'),
      now,
    );
  }

  private async flushGroups(
    groups: readonly [
      string,
      { kind: Output['kind']; items: { o: Output; onNew: (() => void) | undefined }[] },
    ][],
    now: number,
  ): Promise<void> {
    const results = await Promise.allSettled(
      groups.map(async ([stream, g]) => {
        try {
          const ids = await addOnceMany(
            this.redis,
            stream,
            g.items.map((it) => ({
              key: it.o.key,
              seq: it.o.seq,
              fields: it.o.fields,
              retention: retentionOf(it.o.kind),
            })),
            now,
          );
          ids.forEach((id, i) => {
            const it = g.items[i];
            if (id === null || !it) return;
            this.metrics.outputPublish.inc({ stream_kind: it.o.kind });
            it.onNew?.();
          });
        } catch (err) {
          this.metrics.outputPublishErrors.inc({ stream_kind: g.kind }, g.items.length);
          this.log.warn({ err: errorMessage(err), stream }, 'strategy output publish failed');
          throw err;
        }
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

export class OutputPublisher {
  constructor(
    private readonly redis: RedisClient,
    private readonly metrics: RunnerMetrics,
    private readonly log: Logger,
  ) {}

  /**
   * Fence a run that stopped or failed: its per-candle outputs' high-water marks go to the maximum, so
   * whatever an instance still computes for it afterwards is a no-op (no signal after `stopped`).
   */
  async fence(run: RunRef): Promise<void> {
    const max = String(Number.MAX_SAFE_INTEGER);
    const id = run.runId;
    // Metrics first: a batch writes events before metrics (see OutputBatch.flush), so this order never
    // leaves a candle with a metric but without its events.
    await this.redis.hSet(highWaterKey(streams.strategyMetrics(run.userId)), { [`${id}:metric`]: max });
    await this.redis.hSet(highWaterKey(streams.strategyEvents(run.userId)), {
      [`${id}:signal`]: max,
      [`${id}:trade_open`]: max,
      [`${id}:trade_close`]: max,
    });
  }

  /** A batch for the outputs of one candle. */
  batch(): OutputBatch {
    return new OutputBatch(this.redis, this.metrics, this.log);
  }

  /** One event now; `seq` orders events of one kind of one run (candle open time, or 0 for started/stopped/failed). */
  async event(
    run: RunRef,
    type: StrategyEventType,
    seq: number,
    candle: Candle | null,
    extra: Record<string, JsonValue> = {},
  ): Promise<boolean> {
    return this.publish(eventOutput(run, type, seq, candle, extra));
  }

  private async publish(o: Output): Promise<boolean> {
    try {
      const id = await addOnce(this.redis, {
        stream: o.stream,
        key: o.key,
        seq: o.seq,
        fields: o.fields,
        retention: retentionOf(o.kind),
      });
      if (id !== null) this.metrics.outputPublish.inc({ stream_kind: o.kind });
      return id !== null;
    } catch (err) {
      this.metrics.outputPublishErrors.inc({ stream_kind: o.kind });
      this.log.warn(
        { err: errorMessage(err), stream: o.stream, key: o.key },
        'strategy output publish failed',
      );
      throw err;
    }
  }
}
