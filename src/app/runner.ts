/**
 * Wiring of the strategy runner: Redis, the relational database (strategies, runs, chat bindings), the
 * candle store, the notifier and metrics. Shared by `marketbus runner` and `marketbus up`.
 */
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

export interface RunnerRuntimeOptions {
  readonly redis: RedisConnectionOptions;
  readonly db: SqlExecutor;
  readonly candles: CandleStore;
  readonly registry: Registry;
  readonly log: Logger;
  /** Default: `telegram` in production (NODE_ENV=production), else `log_only` (seed 004). */
  readonly notifyMode?: NotifyMode;
  /** Default `TELEGRAM_BOT_TOKEN`. */
  readonly botToken?: string;
  /** Bot API base; default Telegram's (`TELEGRAM_API_ROOT` overrides, for local servers). */
  readonly telegramApiRoot?: string;
  readonly instanceId?: string;
  readonly leaseTtlMs?: number;
  readonly syncIntervalMs?: number;
}

export interface RunnerRuntime {
  readonly runner: RunnerService;
  readonly notifier: TelegramNotifier;
  readonly redis: RedisClient;
  close(): Promise<void>;
}

export async function startRunner(o: RunnerRuntimeOptions): Promise<RunnerRuntime> {
  const mode =
    o.notifyMode ??
    (process.env.MARKETBUS_NOTIFY_MODE === 'telegram'
      ? 'telegram'
      : process.env.MARKETBUS_NOTIFY_MODE === 'log_only'
        ? 'log_only'
        : defaultNotifyMode());
  const token = o.botToken ?? process.env.TELEGRAM_BOT_TOKEN;
  const apiRoot = o.telegramApiRoot ?? process.env.TELEGRAM_API_ROOT;
  // Built first: telegram mode without a token stops the runner at start (seed 004's fail-fast).
  const notifier = createTelegramNotifier({
    mode,
    ...(token ? { botToken: token } : {}),
    ...(apiRoot ? { apiRoot } : {}),
    chatFor: (userId) => confirmedChat(o.db, userId),
    registry: o.registry,
    log: o.log,
  });
  const redis = await connectRedis({ ...o.redis, clientName: 'marketbus-runner' }, o.log);
  const runner = new RunnerService({
    redis,
    db: o.db,
    store: o.candles,
    notifier,
    metrics: new RunnerMetrics(o.registry),
    log: o.log,
    ...(o.instanceId ? { instanceId: o.instanceId } : {}),
    ...(o.leaseTtlMs ? { leaseTtlMs: o.leaseTtlMs } : {}),
    ...(o.syncIntervalMs ? { syncIntervalMs: o.syncIntervalMs } : {}),
  });
  await runner.start();
  let closed: Promise<void> | undefined;
  return {
    runner,
    notifier,
    redis,
    close: () => {
      closed ??= (async () => {
        await runner.close();
        await notifier.close();
        await closeRedis(redis);
      })();
      return closed;
    },
  };
}
