/**
 * Wiring of `marketbus backtester`: the `backtesting` command service (`mgmt:backtesting:commands`,
 * heartbeats with queue counts on `backtesting:status`) and the backtest worker, on one Redis and one
 * database. Either part can be left out (`service: false` for worker-only instances, `worker: false`
 * for a service that only queues).
 */
import {
  closeRedis,
  connectRedis,
  type RedisClient,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { CandleStore } from '../history/store.js';
import type { Logger } from '../util/log.js';
import { BacktestQueue } from '../backtest/queue.js';
import { BacktestWorker } from '../backtest/worker.js';
import { backtestHandlers } from '../backtest/backtests.js';
import { CommandServer } from '../commands/server.js';
import { backtestingService } from '../commands/services.js';

export interface BacktesterOptions {
  readonly redis: RedisConnectionOptions;
  readonly db: SqlExecutor;
  readonly candles: CandleStore;
  readonly log: Logger;
  /** Consumer name in `backtesting.workers`. Default `<hostname>-<pid>`. */
  readonly instanceId?: string;
  /** Serve `mgmt:backtesting:commands`. Default true. */
  readonly service?: boolean;
  /** Run backtest jobs. Default true. */
  readonly worker?: boolean;
  /** Backtests at once in this process. Default 2. */
  readonly concurrency?: number;
  /** When set, at most this many backtests run at once over all workers. */
  readonly globalConcurrency?: number;
  /** Attempts per backtest. Default 3. */
  readonly attempts?: number;
  /** First retry delay, ms. Default 2000. */
  readonly backoffMs?: number;
  readonly queueName?: string;
  readonly pageSize?: number;
  readonly progressEvery?: number;
  readonly heartbeatMs?: number;
  /** Commands of a dead instance are reclaimed after this idle time, ms. Default 30000. */
  readonly claimMinIdleMs?: number;
  readonly lockDurationMs?: number;
  readonly stalledIntervalMs?: number;
}

export interface Backtester {
  readonly redis: RedisClient;
  readonly queue: BacktestQueue;
  readonly worker: BacktestWorker | undefined;
  readonly server: CommandServer<typeof backtestingService> | undefined;
  close(): Promise<void>;
}

export async function startBacktester(o: BacktesterOptions): Promise<Backtester> {
  const redis = await connectRedis({ ...o.redis, clientName: 'marketbus-backtester' }, o.log);
  const queue = new BacktestQueue({
    redis: o.redis,
    log: o.log,
    ...(o.queueName ? { queueName: o.queueName } : {}),
    ...(o.attempts !== undefined ? { attempts: o.attempts } : {}),
    ...(o.backoffMs !== undefined ? { backoffMs: o.backoffMs } : {}),
  });
  if (o.globalConcurrency !== undefined) await queue.setGlobalConcurrency(o.globalConcurrency);
  const worker =
    (o.worker ?? true)
      ? new BacktestWorker({
          redis: o.redis,
          publisher: redis,
          db: o.db,
          store: o.candles,
          log: o.log,
          ...(o.queueName ? { queueName: o.queueName } : {}),
          ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
          ...(o.pageSize !== undefined ? { pageSize: o.pageSize } : {}),
          ...(o.progressEvery !== undefined ? { progressEvery: o.progressEvery } : {}),
          ...(o.lockDurationMs !== undefined ? { lockDurationMs: o.lockDurationMs } : {}),
          ...(o.stalledIntervalMs !== undefined ? { stalledIntervalMs: o.stalledIntervalMs } : {}),
        })
      : undefined;
  let server: CommandServer<typeof backtestingService> | undefined;
  if (o.service ?? true) {
    server = new CommandServer(
      redis,
      backtestingService,
      backtestHandlers({ db: o.db, queue, redis, log: o.log }),
      {
        source: 'backtester',
        log: o.log,
        ...(o.instanceId ? { consumer: o.instanceId } : {}),
        ...(o.heartbeatMs !== undefined ? { heartbeatMs: o.heartbeatMs } : {}),
        ...(o.claimMinIdleMs !== undefined ? { claimMinIdleMs: o.claimMinIdleMs } : {}),
        statusFields: async () => {
          const c = await queue.counts();
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
    await server.start();
  }
  let closed: Promise<void> | undefined;
  return {
    redis,
    queue,
    worker,
    server,
    close: () => {
      closed ??= (async () => {
        await server?.close();
        await worker?.close();
        await queue.close();
        await closeRedis(redis);
      })();
      return closed;
    },
  };
}
