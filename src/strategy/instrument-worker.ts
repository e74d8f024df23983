/**
 * The runs of one instrument (and timeframe) on the instance that holds its lease: one gap-free
 * subscription, fanned out to every run in order. A run joining (or a takeover after a failover) first
 * replays the stored candles since the run started, without outputs, so its indicators and paper
 * position are exactly where the previous owner left them. Outputs are published before a candle
 * counts as processed; when publishing fails the subscription restarts from its checkpoint and the runs
 * are rebuilt, so no output is skipped and none is doubled (addOnce).
 */
import { Backoff } from '../util/backoff.js';
import { sleep } from '../util/sleep.js';
import { RUNNER_GROUP, streams } from '../contracts/catalog.js';
import { parseEntries } from '../bus/replies.js';
import { idFromEpochMs } from '../bus/stream-id.js';
import { candleCodec } from '../contracts/market-data.js';
import type { RedisClient } from '../bus/connection.js';
import type { ActiveRun } from './store.js';
import { failRun } from './store.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { CandleStore } from '../history/store.js';
import { historyRange, subscribeCandles } from '../history/subscription.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { TIMEFRAME_MS, type Candle } from '../contracts/candle.js';
import type { Timeframe } from '../contracts/catalog.js';
import { createStrategy, type Strategy, type StrategyStep } from './engine.js';
import type { TelegramNotifier } from './notify/notifier.js';
import type { OutputBatch, OutputPublisher, RunRef } from './outputs.js';
import type { RunnerMetrics } from './runner-metrics.js';
import { parseStrategySpec } from './spec.js';
import { sendCommand } from '../bus/raw-command.js';

export interface WorkerDeps {
  readonly redis: RedisClient;
  readonly db: SqlExecutor;
  readonly store: CandleStore;
  readonly outputs: OutputPublisher;
  readonly notifier: TelegramNotifier;
  readonly metrics: RunnerMetrics;
  readonly log: Logger;
  /** Consumer name of this instance in the runner's group. */
  readonly instanceId: string;
  /** XREADGROUP BLOCK of the subscription, ms. */
  readonly blockMs: number;
}

interface RunState {
  readonly run: ActiveRun;
  readonly ref: RunRef;
  readonly engine: Strategy;
  /** Candles opening before this were before the run started: fed to the engine without outputs. */
  readonly emitFrom: number;
}

export class InstrumentWorker {
  private readonly runs = new Map<string, RunState>();
  private wanted: readonly ActiveRun[] = [];
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly step: number;

  constructor(
    private readonly d: WorkerDeps,
    readonly instrumentKey: string,
    readonly timeframe: Timeframe,
  ) {
    this.step = TIMEFRAME_MS[timeframe];
  }

  /** The runs this worker serves (applied between two candles). */
  setRuns(runs: readonly ActiveRun[]): void {
    this.wanted = runs;
  }

  get runCount(): number {
    return this.runs.size;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stop after the candle in hand. Idempotent. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const backoff = new Backoff({ baseMs: 500, maxMs: 10_000, jitter: 0.3 });
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        for await (const { candle } of subscribeCandles({
          redis: this.d.redis,
          store: this.d.store,
          instrumentKey: this.instrumentKey,
          timeframe: this.timeframe,
          group: RUNNER_GROUP,
          consumer: this.d.instanceId,
          blockMs: this.d.blockMs,
          signal,
          log: this.d.log,
        })) {
          this.d.metrics.messagesRead.inc();
          await this.applyRuns(candle.tsOpen);
          await this.process(candle);
          backoff.reset();
          this.d.metrics.messagesAcked.inc();
        }
      } catch (err) {
        if (signal.aborted) break;
        this.d.log.warn(
          { err: errorMessage(err), instrument: this.instrumentKey },
          'runner subscription failed; resuming from its checkpoint',
        );
        // The engines may have seen a candle whose outputs were not published: rebuild them.
        this.runs.clear();
        await sleep(backoff.next(), signal);
      }
    }
  }

  /** Bring the run set up to date before the candle at `beforeTs`. */
  private async applyRuns(beforeTs: number): Promise<void> {
    const wanted = new Map(this.wanted.map((r) => [r.id, r]));
    for (const id of this.runs.keys()) if (!wanted.has(id)) this.runs.delete(id);
    for (const run of wanted.values()) {
      if (this.runs.has(run.id)) continue;
      const state = await this.initRun(run, beforeTs);
      if (state) this.runs.set(run.id, state);
    }
  }

  private async initRun(run: ActiveRun, beforeTs: number): Promise<RunState | null> {
    const ref: RunRef = {
      runId: run.id,
      strategyId: run.strategyId,
      strategyName: run.strategy.name,
      userId: run.userId,
      instrumentKey: run.instrumentKey,
      timeframe: this.timeframe,
    };
    try {
      const spec = parseStrategySpec(run.strategy.spec);
      const engine = createStrategy(spec);
      const emitFrom = Math.floor(run.startedAt / this.step) * this.step;
      const state: RunState = { run, ref, engine, emitFrom };
      // Warm the indicators and replay everything since the run started, so a takeover continues the
      // previous owner's paper position exactly. Candles from the run's start on publish their outputs
      // here too: whatever a previous owner already wrote is dropped by the exactly-once script, and
      // whatever nobody wrote (this worker started after the run, or a run joined a worker already
      // ahead) is written now, so no trade or signal goes missing.
      let batch = this.d.outputs.batch();
      for (const c of await this.replayCandles(emitFrom - engine.warmupCandles * this.step, beforeTs)) {
        const step = engine.onCandle(c);
        if (!step || c.tsOpen < emitFrom) continue;
        this.emitStep(batch, state, c, step);
        if (batch.size >= 500) {
          await batch.flush();
          batch = this.d.outputs.batch();
        }
      }
      await batch.flush();
      return state;
    } catch (err) {
      await this.fail(ref, null, err);
      return null;
    }
  }

  /**
   * One candle through every run: the steps first, then all their outputs in one batch (one script call
   * per user stream, in order per run: metric, signal, trade); notices for the outputs that were new.
   */
  /**
   * The candles of `[from, to)` from the store and from the stream, merged by open time: the history
   * writer can be a moment behind the stream, and the stream may have been trimmed past the store's end.
   */
  private async replayCandles(from: number, to: number): Promise<Candle[]> {
    const byOpen = new Map<number, Candle>();
    for (let cursor = from; cursor < to;) {
      const page = await historyRange(this.d.store, this.instrumentKey, this.timeframe, cursor, to, 5000);
      for (const c of page) byOpen.set(c.tsOpen, c);
      const last = page[page.length - 1];
      if (!last || page.length < 5000) break;
      cursor = last.tsOpen + 1;
    }
    const stream = streams.candles(this.timeframe, this.instrumentKey);
    for (let start = idFromEpochMs(Math.max(0, from)); ;) {
      const page = parseEntries(
        await sendCommand(this.d.redis, [
          'XRANGE',
          stream,
          start,
          `(${idFromEpochMs(Math.max(0, to))}`,
          'COUNT',
          '5000',
        ]),
      ).entries;
      for (const e of page) {
        try {
          const c = candleCodec.decode(e.fields).candle;
          if (!byOpen.has(c.tsOpen)) byOpen.set(c.tsOpen, c);
        } catch {
          // a bad entry is the subscription's to dead-letter; the replay skips it
        }
      }
      const last = page[page.length - 1];
      if (!last || page.length < 5000) break;
      start = `(${last.id}`;
    }
    return [...byOpen.values()].sort((a, b) => a.tsOpen - b.tsOpen);
  }

  private async process(candle: Candle): Promise<void> {
    const batch = this.d.outputs.batch();
    const failures: Promise<void>[] = [];
    for (const s of [...this.runs.values()]) {
      if (candle.tsOpen < s.emitFrom) {
        s.engine.onCandle(candle);
        continue;
      }
      let step;
      try {
        step = s.engine.onCandle(candle);
      } catch (err) {
        this.d.metrics.iterationErrors.inc();
        this.runs.delete(s.run.id);
        failures.push(this.fail(s.ref, candle, err));
        continue;
      }
      if (!step) continue;
      this.d.metrics.iterations.inc();
      this.emitStep(batch, s, candle, step);
    }
    await Promise.all(failures);
    // Publishing failures reject: the candle is not checkpointed and comes again.
    await batch.flush();
  }

  /** A step's outputs into the batch: the metric, then a signal, then a trade (notices for new ones). */
  private emitStep(batch: OutputBatch, s: RunState, candle: Candle, step: StrategyStep): void {
    batch.metric(s.ref, candle, step);
    if (step.signal) {
      const signal = step.signal;
      const template = s.engine.spec.signalTemplate;
      batch.event(s.ref, 'signal', candle.tsOpen, candle, { signal, template, price: candle.close }, () =>
        this.d.notifier.notify({
          ...this.notice(s, 'signal'),
          signal: `${signal} (${template})`,
          price: candle.close,
        }),
      );
    }
    if (step.trade) {
      const t = step.trade;
      const type = t.kind === 'open' ? 'trade_open' : 'trade_close';
      const extra = {
        side: t.side,
        price: t.price,
        quantity: t.quantity,
        realized_pnl: t.realizedPnl,
        equity: step.equity,
      };
      batch.event(s.ref, type, candle.tsOpen, candle, extra, () =>
        this.d.notifier.notify({
          ...this.notice(s, type),
          side: t.side,
          price: t.price,
          quantity: t.quantity,
          ...(t.kind === 'close' ? { pnl: t.realizedPnl } : {}),
        }),
      );
    }
  }

  private notice(
    s: RunState,
    type: 'signal' | 'trade_open' | 'trade_close' | 'failed',
  ): Parameters<TelegramNotifier['notify']>[0] {
    return {
      userId: s.ref.userId,
      type,
      strategyId: s.ref.strategyId,
      runId: s.ref.runId,
      instrumentKey: s.ref.instrumentKey,
      strategyName: s.ref.strategyName,
      timeframe: s.ref.timeframe,
    };
  }

  /** A run that cannot go on: marked failed in the database, a `failed` event, a notice. */
  private async fail(ref: RunRef, candle: Candle | null, err: unknown): Promise<void> {
    const msg = errorMessage(err);
    this.d.log.error({ run: ref.runId, err: msg }, 'strategy run failed');
    await failRun(this.d.db, ref.runId, msg).catch(() => undefined);
    await this.d.outputs.fence(ref).catch(() => undefined);
    if (await this.d.outputs.event(ref, 'failed', 0, candle, { error: msg }).catch(() => false)) {
      this.d.notifier.notify({
        userId: ref.userId,
        type: 'failed',
        strategyId: ref.strategyId,
        runId: ref.runId,
        instrumentKey: ref.instrumentKey,
        strategyName: ref.strategyName,
        error: msg,
      });
    }
  }
}
