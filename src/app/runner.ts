/**
 * Wiring of the strategy runner: Redis, the relational database (strategies, runs, chat bindings), the
 * candle store, the notifier and metrics. Shared by `marketbus runner` and `marketbus up`.
 */
import { ensureRedisCode } from './redis-code.js';
import type { Registry } from 'prom-client';
import {
  closeRedis,
  connectRedis,
  type RedisClient,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import { confirmedChat } from '../api/auth/identity-store.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { CandleStore } from '../history/store.js';
import type { Logger } from '../util/log.js';
import {
  createTelegramNotifier,
  defaultNotifyMode,
  type TelegramNotifier,
} from '../strategy/notify/notifier.js';
import type { NotifyMode } from '../strategy/notify/event.js';
import { RunnerMetrics } from '../strategy/runner-metrics.js';
import { RunnerService } from '../strategy/runner.js';
import { closeOrCut, ServiceStack } from './stack.js';

export interface RunnerRuntimeOptions {
  readonly redis: RedisConnectionOptions;
  /** The relational database (strategies, runs, chat bindings); already migrated; stays open. */
  readonly db: SqlExecutor;
  /** History the runner warms its strategies from; stays open. */
  readonly candles: CandleStore;
  /** Gets the runner's and the notifier's metrics. */
  readonly registry: Registry;
  readonly log: Logger;
  /**
   * How notices are sent.
   * @defaultValue `MARKETBUS_NOTIFY_MODE`, else `telegram` in production (NODE_ENV=production), else
   * `log_only`
   */
  readonly notifyMode?: NotifyMode;
  /**
   * @defaultValue `TELEGRAM_BOT_TOKEN`
   */
  readonly botToken?: string;
  /**
   * Bot API base URL, for local servers.
   * @defaultValue `TELEGRAM_API_ROOT`, else Telegram's
   */
  readonly telegramApiRoot?: string;
  /**
   * Lease owner and consumer name.
   * @defaultValue `<hostname>-<pid>-<random>`
   */
  readonly instanceId?: string | undefined;
  /**
   * Lease time to live of an instrument's strategies on this instance, ms.
   * @defaultValue 10000
   */
  readonly leaseTtlMs?: number;
  /**
   * How often the runner renews leases and syncs its strategies, ms.
   * @defaultValue 1000
   */
  readonly syncIntervalMs?: number;
}

export interface RunnerRuntime extends AsyncDisposable {
  readonly runner: RunnerService;
  readonly notifier: TelegramNotifier;
  readonly redis: RedisClient;
  /** Same as `[Symbol.asyncDispose]()`: runner, notifier, Redis, in that order. Idempotent. */
  close(): Promise<void>;
}

export async function startRunner(o: RunnerRuntimeOptions): Promise<RunnerRuntime> {
  const mode =
    o.notifyMode ??
    (process.env['MARKETBUS_NOTIFY_MODE'] === 'telegram'
      ? 'telegram'
      : process.env['MARKETBUS_NOTIFY_MODE'] === 'log_only'
        ? 'log_only'
        : defaultNotifyMode());
  const token = o.botToken ?? process.env['TELEGRAM_BOT_TOKEN'];
  const apiRoot = o.telegramApiRoot ?? process.env['TELEGRAM_API_ROOT'];
  // Built first: telegram mode without a token stops the runner at start (fail fast).
  const notifier = createTelegramNotifier({
    mode,
    botToken: token || undefined,
    apiRoot: apiRoot || undefined,
    chatFor: (userId) => confirmedChat(o.db, userId),
    registry: o.registry,
    log: o.log,
  });
  const stack = new ServiceStack(o.log);
  stack.defer('notifier', () => notifier.close());
  return stack.start(async () => {
    const redis = await connectRedis({ ...o.redis, clientName: 'marketbus-runner' }, o.log);
    stack.defer('runner redis', () => closeRedis(redis));
    await ensureRedisCode(redis, { bullmq: false });
    const runner = new RunnerService({
      redis,
      db: o.db,
      store: o.candles,
      notifier,
      metrics: new RunnerMetrics(o.registry),
      log: o.log,
      instanceId: o.instanceId || undefined,
      leaseTtlMs: o.leaseTtlMs || undefined,
      syncIntervalMs: o.syncIntervalMs || undefined,
    });
    stack.defer('runner', () => closeOrCut(() => runner.close(), redis));
    await runner.start();
    const close = (): Promise<void> => stack.close();
    return { runner, notifier, redis, close, [Symbol.asyncDispose]: close };
  });
}
