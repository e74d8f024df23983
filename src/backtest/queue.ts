/**
 * The backtest job queue: BullMQ queue `backtests` on the same Redis as the bus (node-redis clients
 * built from the same RedisConnectionOptions; BullMQ wraps them with its node-redis adapter). Jobs
 * carry only the backtest id (the row in `backtests` holds the rest); the job id is the backtest id, so
 * adding the same backtest twice queues it once. Kept tidy: completed jobs are dropped after a day
 * (at most 1000 kept), failed ones after a week (at most 5000); retries use exponential backoff.
 */
import { Queue } from 'bullmq';
import { BACKTEST_QUEUE } from '../contracts/catalog.js';
import { withoutNeedlessScriptLoad } from './bull-scripts.js';
import { closeRedis, createRedisClient, type RedisConnectionOptions } from '../bus/connection.js';
import { withDefaults } from '../util/defaults.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export const BACKTEST_JOB = 'backtest';

export interface BacktestJobData {
  readonly backtest_id: string;
}

export interface BacktestJobResult {
  readonly status: string;
}

export interface BacktestQueueOptions {
  /** The Redis server BullMQ runs on. */
  readonly redis: RedisConnectionOptions;
  /**
   * BullMQ queue name.
   * @defaultValue `backtests`
   */
  readonly queueName?: string | undefined;
  /**
   * Attempts per backtest (1 = no retry), attempts.
   * @defaultValue 3
   */
  readonly attempts?: number | undefined;
  /**
   * First retry delay, ms; doubles per attempt.
   * @defaultValue 2000
   */
  readonly backoffMs?: number | undefined;
  /**
   * Where queue errors are logged.
   * @defaultValue none (not logged)
   */
  readonly log?: Logger;
}

/** The defaults of {@link BacktestQueueOptions}, applied by the `BacktestQueue` constructor. */
export const BACKTEST_QUEUE_DEFAULTS = Object.freeze({
  queueName: BACKTEST_QUEUE,
  attempts: 3,
  backoffMs: 2000,
} satisfies Partial<BacktestQueueOptions>);

export type BacktestQueueCounts = Readonly<
  Record<'waiting' | 'active' | 'delayed' | 'failed' | 'completed', number>
>;

export class BacktestQueue {
  readonly name: string;
  readonly queue: Queue<BacktestJobData, BacktestJobResult>;
  private readonly client: ReturnType<typeof createRedisClient>;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private closing: Promise<void> | undefined;

  constructor(opts: BacktestQueueOptions) {
    const o = withDefaults(BACKTEST_QUEUE_DEFAULTS, opts);
    this.name = o.queueName;
    this.attempts = Math.max(1, o.attempts);
    this.backoffMs = o.backoffMs;
    this.client = createRedisClient({ ...o.redis, clientName: 'marketbus-backtest-queue' }, o.log);
    this.queue = new Queue<BacktestJobData, BacktestJobResult>(this.name, {
      connection: withoutNeedlessScriptLoad(this.client),
    });
    this.queue.on('error', (err: unknown) =>
      o.log?.warn({ err: errorMessage(err), queue: this.name }, 'backtest queue error'),
    );
  }

  /** Queue a backtest (a no-op when its job exists already). */
  async enqueue(backtestId: string): Promise<void> {
    await this.queue.add(
      BACKTEST_JOB,
      { backtest_id: backtestId },
      {
        jobId: backtestId,
        attempts: this.attempts,
        backoff: { type: 'exponential', delay: this.backoffMs },
        removeOnComplete: { age: 86_400, count: 1000 },
        removeOnFail: { age: 7 * 86_400, count: 5000 },
      },
    );
  }

  /** Drop a job that is waiting or delayed (not one a worker holds). True when removed. */
  async remove(backtestId: string): Promise<boolean> {
    return (await this.queue.remove(backtestId)) === 1;
  }

  /** Limit running backtests over all workers together (BullMQ global concurrency). */
  async setGlobalConcurrency(n: number): Promise<void> {
    await this.queue.setGlobalConcurrency(n);
  }

  async counts(): Promise<BacktestQueueCounts> {
    const c = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    return {
      waiting: c['waiting'] ?? 0,
      active: c['active'] ?? 0,
      delayed: c['delayed'] ?? 0,
      failed: c['failed'] ?? 0,
      completed: c['completed'] ?? 0,
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.close().catch(() => undefined);
      await closeRedis(this.client).catch(() => undefined);
    })();
    return this.closing;
  }
}
