/**
 * The backtest worker: a BullMQ Worker on the `backtests` queue, `concurrency` jobs at a time. A job:
 *
 *   1. moves its row queued -> running (nothing to do when it was cancelled or finished meanwhile;
 *      a finished one is announced again, once, in case an earlier worker died before announcing);
 *   2. runs the driver over the stored candles, writing progress every `progressEvery` candles (row
 *      and job progress) and checking the row's cancel flag between pages;
 *   3. stores the result (done, or cancelled with what ran) and announces it on
 *      `backtesting:mgmt:results`.
 *
 * A failing attempt is retried by the queue (attempts, exponential backoff) with the row back at
 * queued; the last attempt, or an error that retrying cannot fix (strategy gone or invalid), marks it
 * failed and announces that. A worker that dies mid-job leaves the job to BullMQ's stalled-job check,
 * which hands it to another worker; it starts over.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import {
  closeRedis,
  createRedisClient,
  type RedisClient,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { getStrategy } from '../strategy/store.js';
import { ConfigError, errorMessage } from '../util/errors.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { CandleStore } from '../history/store.js';
import type { Logger } from '../util/log.js';
import { parseStrategySpec, type StrategySpec } from '../strategy/spec.js';
import { runBacktest } from './driver.js';
import { publishBacktestFinished } from './events.js';
import { type BacktestJobData, type BacktestJobResult } from './queue.js';
import { BACKTEST_QUEUE } from '../contracts/catalog.js';
import { withoutNeedlessScriptLoad } from './bull-scripts.js';
import {
  cancelRequested,
  finishBacktest,
  markRetrying,
  recordProgress,
  selectBacktest,
  startAttempt,
} from './store.js';

export interface BacktestWorkerOptions {
  /** The Redis server BullMQ runs on (a single server: no cluster). */
  readonly redis: RedisConnectionOptions;
  /** Connected client for announcements on `backtesting:mgmt:results`. */
  readonly publisher: RedisClient;
  /** The relational database holding strategies and backtests. */
  readonly db: SqlExecutor;
  /** The candle history the backtests read. */
  readonly store: CandleStore;
  /**
   * BullMQ queue name.
   * @defaultValue `backtests`
   */
  readonly queueName?: string | undefined;
  /**
   * Backtests run at once by this worker, jobs (at least 1).
   * @defaultValue 2
   */
  readonly concurrency?: number | undefined;
  /**
   * Candles per store read (cancellation is checked between reads), candles.
   * @defaultValue 5000
   */
  readonly pageSize?: number | undefined;
  /**
   * Progress is written every this many candles, candles.
   * @defaultValue 5000
   */
  readonly progressEvery?: number | undefined;
  /**
   * BullMQ job lock, ms: a job of a worker silent this long is handed to another.
   * @defaultValue 30000
   */
  readonly lockDurationMs?: number | undefined;
  /**
   * How often stalled jobs are looked for, ms.
   * @defaultValue 30000
   */
  readonly stalledIntervalMs?: number | undefined;
  /**
   * Where warnings and job progress are logged.
   * @defaultValue none (not logged)
   */
  readonly log?: Logger;
}

/** The defaults of {@link BacktestWorkerOptions}, applied by the `BacktestWorker` constructor. */
export const BACKTEST_WORKER_DEFAULTS = Object.freeze({
  queueName: BACKTEST_QUEUE,
  concurrency: 2,
  pageSize: 5000,
  progressEvery: 5000,
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
} satisfies Partial<BacktestWorkerOptions>);

export class BacktestWorker {
  readonly worker: Worker<BacktestJobData, BacktestJobResult>;
  private readonly client: RedisClient;
  private closing: Promise<void> | undefined;
  private readonly o: WithDefaults<BacktestWorkerOptions, typeof BACKTEST_WORKER_DEFAULTS>;

  constructor(opts: BacktestWorkerOptions) {
    const o = withDefaults(BACKTEST_WORKER_DEFAULTS, opts);
    this.o = o;
    if (o.redis.cluster === true)
      throw new ConfigError(
        'redis.cluster',
        'the backtester runs on BullMQ, which has no Redis Cluster support on node-redis: give it a single Redis server',
      );
    this.client = createRedisClient({ ...o.redis, clientName: 'marketbus-backtest-worker' }, o.log);
    this.worker = new Worker<BacktestJobData, BacktestJobResult>(o.queueName, (job) => this.process(job), {
      connection: withoutNeedlessScriptLoad(this.client),
      concurrency: Math.max(1, o.concurrency),
      lockDuration: o.lockDurationMs,
      stalledInterval: o.stalledIntervalMs,
    });
    this.worker.on('error', (err: unknown) =>
      o.log?.warn({ err: errorMessage(err) }, 'backtest worker error'),
    );
    this.worker.on('failed', (job, err) =>
      o.log?.warn(
        { backtest: job?.data.backtest_id, attempt: job?.attemptsMade, err: errorMessage(err) },
        'backtest attempt failed',
      ),
    );
  }

  /**
   * Wait for the jobs in hand, then stop. Idempotent. With Redis unreachable the jobs in hand cannot
   * finish (their progress and results go through Redis) and BullMQ's graceful close would wait for
   * ever on its connections, so the worker is closed at once instead.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.worker.close(!this.client.isReady).catch(() => undefined);
      await closeRedis(this.client).catch(() => undefined);
    })();
    return this.closing;
  }

  private async process(job: Job<BacktestJobData, BacktestJobResult>): Promise<BacktestJobResult> {
    const { db, log } = this.o;
    const id = job.data.backtest_id;
    const attempt = job.attemptsMade + 1;
    const rec = await startAttempt(db, id, attempt);
    if (!rec) return this.notRunnable(id);
    log?.info({ backtest: id, attempt }, 'backtest started');
    try {
      const spec = await this.specOf(rec.strategyId);
      let cancel = false;
      const out = await runBacktest({
        store: this.o.store,
        spec,
        from: rec.from,
        to: rec.to,
        pageSize: this.o.pageSize,
        progressEvery: this.o.progressEvery,
        onProgress: async (p) => {
          cancel = (await recordProgress(db, id, p.fraction)) !== false || cancel;
          await job.updateProgress({ processed: p.processed, expected: p.expected, fraction: p.fraction });
        },
        shouldStop: async () => cancel || (await cancelRequested(db, id)),
      });
      const status = out.stopped ? 'cancelled' : 'done';
      await finishBacktest(db, id, status, out.result, null);
      await this.announce(id);
      log?.info({ backtest: id, status, candles: out.result.candles.processed }, 'backtest finished');
      return { status };
    } catch (err) {
      const final = err instanceof UnrecoverableError || attempt >= (job.opts.attempts ?? 1);
      if (final) {
        await finishBacktest(db, id, 'failed', null, errorMessage(err));
        await this.announce(id);
      } else await markRetrying(db, id, `attempt ${attempt} failed: ${errorMessage(err)}`);
      throw err;
    }
  }

  /** The row is not queued: cancelled before it ran, finished, or cancelled while a dead worker held it. */
  private async notRunnable(id: string): Promise<BacktestJobResult> {
    const cur = await selectBacktest(this.o.db, id, false);
    if (!cur) return { status: 'missing' };
    if ((cur.status === 'queued' || cur.status === 'running') && cur.cancelRequested) {
      await finishBacktest(this.o.db, id, 'cancelled', null, null);
    }
    await this.announce(id);
    return { status: (await selectBacktest(this.o.db, id, false))?.status ?? cur.status };
  }

  private async specOf(strategyId: string): Promise<StrategySpec> {
    const strategy = await getStrategy(this.o.db, strategyId);
    if (!strategy) throw new UnrecoverableError(`strategy ${strategyId} no longer exists`);
    try {
      return parseStrategySpec(strategy.spec);
    } catch (err) {
      throw new UnrecoverableError(errorMessage(err));
    }
  }

  /** Announce a finished backtest (once; a no-op for one that is not finished). */
  private async announce(id: string): Promise<void> {
    const b = await selectBacktest(this.o.db, id, true);
    if (b) await publishBacktestFinished(this.o.publisher, b);
  }
}
