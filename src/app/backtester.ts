/**
 * Wiring of `marketbus backtester`: the `backtesting` command service (`mgmt:backtesting:commands`,
 * heartbeats with queue counts on `backtesting:status`) and the backtest worker, on one Redis and one
 * database. Either part can be left out (`service: false` for worker-only instances, `worker: false`
 * for a service that only queues).
 */
import { ensureRedisCode } from './redis-code.js';
import {
  closeRedis,
  connectRedis,
  type RedisClient,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { CandleStore } from '../history/store.js';
import type { Logger } from '../util/log.js';
import { BACKTEST_QUEUE_DEFAULTS, BacktestQueue } from '../backtest/queue.js';
import { BACKTEST_WORKER_DEFAULTS, BacktestWorker } from '../backtest/worker.js';
import { withDefaults } from '../util/defaults.js';
import { backtestHandlers } from '../backtest/backtests.js';
import { CommandServer } from '../commands/server.js';
import { backtestingService } from '../commands/services.js';
import { TimeoutError } from '../util/errors.js';
import { closeOrCut, ServiceStack } from './stack.js';

export interface BacktesterOptions {
  readonly redis: RedisConnectionOptions;
  /** The relational database (strategies, backtests); already migrated; stays open. */
  readonly db: SqlExecutor;
  /** History the backtests read; stays open. */
  readonly candles: CandleStore;
  readonly log: Logger;
  /**
   * Consumer name in `backtesting.workers`.
   * @defaultValue `<hostname>-<pid>`
   */
  readonly instanceId?: string | undefined;
  /**
   * Serve `mgmt:backtesting:commands`.
   * @defaultValue true
   */
  readonly service?: boolean;
  /**
   * Run backtest jobs in this process.
   * @defaultValue true
   */
  readonly worker?: boolean;
  /**
   * Backtests at once in this process.
   * @defaultValue 2
   */
  readonly concurrency?: number;
  /**
   * Backtests at once over all workers.
   * @defaultValue unlimited (the queue's setting is left as it is)
   */
  readonly globalConcurrency?: number;
  /**
   * Attempts per backtest.
   * @defaultValue 3
   */
  readonly attempts?: number;
  /**
   * First retry delay, ms (exponential).
   * @defaultValue 2000
   */
  readonly backoffMs?: number;
  /**
   * BullMQ queue name.
   * @defaultValue `backtests`
   */
  readonly queueName?: string;
  /**
   * Candles per store read (cancellation is checked between reads), candles.
   * @defaultValue 5000
   */
  readonly pageSize?: number;
  /**
   * Progress is written every this many candles.
   * @defaultValue 5000
   */
  readonly progressEvery?: number;
  /**
   * Heartbeat period of the command service on `backtesting:status`, ms.
   * @defaultValue 5000
   */
  readonly heartbeatMs?: number;
  /**
   * Commands of a dead instance are reclaimed after this idle time, ms.
   * @defaultValue 30000
   */
  readonly claimMinIdleMs?: number;
  /**
   * BullMQ job lock, ms: a job of a worker silent this long is handed to another.
   * @defaultValue 30000
   */
  readonly lockDurationMs?: number;
  /**
   * How often stalled jobs are looked for, ms.
   * @defaultValue 30000
   */
  readonly stalledIntervalMs?: number;
  /**
   * Longest wait for the queue counts a heartbeat reports, ms.
   * @defaultValue 2000
   */
  readonly commandTimeoutMs?: number;
}

/** The defaults of {@link BacktesterOptions}, applied by `startBacktester`. */
export const BACKTESTER_DEFAULTS = Object.freeze({
  service: true,
  worker: true,
  concurrency: BACKTEST_WORKER_DEFAULTS.concurrency,
  attempts: BACKTEST_QUEUE_DEFAULTS.attempts,
  backoffMs: BACKTEST_QUEUE_DEFAULTS.backoffMs,
  queueName: BACKTEST_QUEUE_DEFAULTS.queueName,
  pageSize: BACKTEST_WORKER_DEFAULTS.pageSize,
  progressEvery: BACKTEST_WORKER_DEFAULTS.progressEvery,
  heartbeatMs: 5000,
  claimMinIdleMs: 30_000,
  lockDurationMs: BACKTEST_WORKER_DEFAULTS.lockDurationMs,
  stalledIntervalMs: BACKTEST_WORKER_DEFAULTS.stalledIntervalMs,
  commandTimeoutMs: 2000,
} satisfies Partial<BacktesterOptions>);

/** `p`, or a TimeoutError after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  p.catch(() => undefined);
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Backtester extends AsyncDisposable {
  readonly redis: RedisClient;
  readonly queue: BacktestQueue;
  readonly worker: BacktestWorker | undefined;
  readonly server: CommandServer<typeof backtestingService> | undefined;
  /** Same as `[Symbol.asyncDispose]()`: command server, worker, queue, Redis. Idempotent. */
  close(): Promise<void>;
}

export async function startBacktester(opts: BacktesterOptions): Promise<Backtester> {
  const o = withDefaults(BACKTESTER_DEFAULTS, opts);
  const stack = new ServiceStack(o.log);
  return stack.start(async () => {
    const redis = await connectRedis({ ...o.redis, clientName: 'marketbus-backtester' }, o.log);
    stack.defer('backtester redis', () => closeRedis(redis));
    await ensureRedisCode(redis, { bullmq: true });
    const queue = new BacktestQueue({
      redis: o.redis,
      log: o.log,
      queueName: o.queueName || undefined,
      attempts: o.attempts,
      backoffMs: o.backoffMs,
    });
    stack.defer('backtest queue', () => queue.close());
    if (o.globalConcurrency !== undefined) await queue.setGlobalConcurrency(o.globalConcurrency);
    const worker = o.worker
      ? new BacktestWorker({
          redis: o.redis,
          publisher: redis,
          db: o.db,
          store: o.candles,
          log: o.log,
          queueName: o.queueName || undefined,
          concurrency: o.concurrency,
          pageSize: o.pageSize,
          progressEvery: o.progressEvery,
          lockDurationMs: o.lockDurationMs,
          stalledIntervalMs: o.stalledIntervalMs,
        })
      : undefined;
    if (worker) stack.defer('backtest worker', () => worker.close());
    let server: CommandServer<typeof backtestingService> | undefined;
    if (o.service) {
      const s = new CommandServer(
        redis,
        backtestingService,
        backtestHandlers({ db: o.db, queue, redis, log: o.log }),
        {
          source: 'backtester',
          log: o.log,
          consumer: o.instanceId || undefined,
          heartbeatMs: o.heartbeatMs,
          claimMinIdleMs: o.claimMinIdleMs,
          statusFields: async () => {
            // Bounded: BullMQ's commands wait as long as Redis is away, and the last heartbeat of
            // close() must not wait with them.
            const c = await within(queue.counts(), o.commandTimeoutMs, 'backtest queue counts');
            return {
              queue_waiting: String(c.waiting),
              queue_active: String(c.active),
              queue_delayed: String(c.delayed),
              queue_failed: String(c.failed),
              worker: worker ? 'yes' : 'no',
            };
          },
        },
      );
      stack.defer('backtesting command server', () => closeOrCut(() => s.close(), redis));
      server = s;
      await s.start();
    }
    const close = (): Promise<void> => stack.close();
    return { redis, queue, worker, server, close, [Symbol.asyncDispose]: close };
  });
}
