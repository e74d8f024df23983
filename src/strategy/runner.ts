/**
 * The strategy live runner. Several instances share the work: each instrument (candle
 * stream) is owned by one live instance at a time through a lease in Redis; an instance that dies
 * stops renewing, and within `leaseTtlMs + syncIntervalMs` a survivor takes its instruments over and
 * resumes from the last acknowledged candle. Active runs come from the database; commands on the bus
 * start and stop them.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { sleep } from '../util/sleep.js';
import { streams, type Timeframe } from '../contracts/catalog.js';
import type { RedisClient } from '../bus/connection.js';
import { holdLease, releaseLease } from '../bus/lease.js';
import { activeRuns, type ActiveRun } from './store.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { CandleStore } from '../history/store.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { StreamConsumer } from '../bus/consumer.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { createCommandConsumer } from './commands.js';
import { InstrumentWorker } from './instrument-worker.js';
import type { TelegramNotifier } from './notify/notifier.js';
import { OutputPublisher } from './outputs.js';
import type { RunnerMetrics } from './runner-metrics.js';

export interface RunnerOptions {
  /** Connected client for candles, commands and outputs. */
  readonly redis: RedisClient;
  /** The relational database holding strategies, runs and leases. */
  readonly db: SqlExecutor;
  /** The candle history a run warms up from. */
  readonly store: CandleStore;
  /** Sends the notices of runs. */
  readonly notifier: TelegramNotifier;
  /** The runner's metrics. */
  readonly metrics: RunnerMetrics;
  /** Where the runner logs. */
  readonly log: Logger;
  /**
   * This instance's name (lease owner, consumer name).
   * @defaultValue `<hostname>-<pid>-<random>`
   */
  readonly instanceId?: string | undefined;
  /**
   * How often active runs are read and leases taken or renewed, ms.
   * @defaultValue 1000
   */
  readonly syncIntervalMs?: number | undefined;
  /**
   * Lease lifetime, ms: how long a dead instance keeps its instruments.
   * @defaultValue 10000
   */
  readonly leaseTtlMs?: number | undefined;
  /**
   * Handle commands on `mgmt:strategy:commands`.
   * @defaultValue true
   */
  readonly commands?: boolean | undefined;
  /**
   * XREADGROUP BLOCK of candle subscriptions and commands, ms.
   * @defaultValue 1000
   */
  readonly blockMs?: number | undefined;
}

/** The defaults of {@link RunnerOptions}, applied by the `RunnerService` constructor. */
export const RUNNER_DEFAULTS = Object.freeze({
  syncIntervalMs: 1000,
  leaseTtlMs: 10_000,
  commands: true,
  blockMs: 1000,
} satisfies Partial<RunnerOptions>);

export class RunnerService {
  readonly instanceId: string;
  private readonly workers = new Map<string, InstrumentWorker>();
  private readonly abort = new AbortController();
  private readonly outputs: OutputPublisher;
  private commands: StreamConsumer<unknown> | undefined;
  private loop: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  private readonly o: WithDefaults<RunnerOptions, typeof RUNNER_DEFAULTS>;

  constructor(opts: RunnerOptions) {
    const o = withDefaults(RUNNER_DEFAULTS, opts);
    this.o = o;
    this.instanceId = o.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.outputs = new OutputPublisher(o.redis, o.metrics, o.log);
  }

  /** Instruments (candle streams) this instance owns now. */
  get owned(): string[] {
    return [...this.workers.keys()];
  }

  async start(): Promise<void> {
    if (this.o.commands) {
      const c = createCommandConsumer({
        redis: this.o.redis,
        db: this.o.db,
        outputs: this.outputs,
        log: this.o.log,
        consumer: this.instanceId,
        blockMs: this.o.blockMs,
      });
      this.commands = c as StreamConsumer<unknown>;
      await c.start();
    }
    await this.sync().catch((err: unknown) =>
      this.o.log.warn({ err: errorMessage(err) }, 'runner sync failed'),
    );
    this.loop = this.syncLoop();
    this.o.log.info({ instance: this.instanceId }, 'strategy runner started');
  }

  /** Stop workers (after their candle in hand), release leases, stop commands. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.abort.abort();
      await this.loop;
      await this.commands?.close();
      for (const [name, w] of this.workers) {
        await w.stop();
        await releaseLease(this.o.redis, name, this.instanceId).catch(() => false);
      }
      this.workers.clear();
      this.o.log.info({ instance: this.instanceId }, 'strategy runner stopped');
    })();
    return this.closing;
  }

  private async syncLoop(): Promise<void> {
    const every = this.o.syncIntervalMs;
    while (!this.abort.signal.aborted) {
      await sleep(every, this.abort.signal);
      if (this.abort.signal.aborted) break;
      try {
        await this.sync();
      } catch (err) {
        this.o.log.warn({ err: errorMessage(err) }, 'runner sync failed');
      }
    }
  }

  /** Read the active runs, hold or take the leases of their instruments, start and stop workers. */
  private async sync(): Promise<void> {
    const byStream = new Map<string, { key: string; tf: Timeframe; runs: ActiveRun[] }>();
    for (const run of await activeRuns(this.o.db)) {
      const tf = timeframeOf(run);
      const name = streams.candles(tf, run.instrumentKey);
      let g = byStream.get(name);
      if (!g) byStream.set(name, (g = { key: run.instrumentKey, tf, runs: [] }));
      g.runs.push(run);
    }
    const ttl = this.o.leaseTtlMs;
    for (const [name, g] of byStream) {
      if (this.abort.signal.aborted) return;
      const held = await holdLease(this.o.redis, name, this.instanceId, ttl);
      let w = this.workers.get(name);
      if (!held) {
        if (w) {
          this.o.log.warn({ stream: name }, 'lease lost; another instance owns this instrument now');
          this.workers.delete(name);
          await w.stop();
        }
        continue;
      }
      if (!w) {
        w = new InstrumentWorker(
          {
            redis: this.o.redis,
            db: this.o.db,
            store: this.o.store,
            outputs: this.outputs,
            notifier: this.o.notifier,
            metrics: this.o.metrics,
            log: this.o.log,
            instanceId: this.instanceId,
            blockMs: this.o.blockMs,
          },
          g.key,
          g.tf,
        );
        this.workers.set(name, w);
        this.o.log.info({ stream: name, runs: g.runs.length }, 'instrument taken');
        w.setRuns(g.runs);
        w.start();
      } else w.setRuns(g.runs);
    }
    for (const [name, w] of this.workers) {
      if (byStream.has(name)) continue;
      this.workers.delete(name);
      await w.stop();
      await releaseLease(this.o.redis, name, this.instanceId).catch(() => false);
    }
  }
}

function timeframeOf(run: ActiveRun): Timeframe {
  const spec = run.strategy.spec;
  const tf =
    typeof spec === 'object' && spec !== null ? (spec as Record<string, unknown>)['timeframe'] : undefined;
  return tf === '5m' ? '5m' : '1m';
}
