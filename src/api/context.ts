/** What the routes share: settings, connections, identity, the live relay and the registries. */
import type { BacktestQueue } from '../backtest/queue.js';
import type { Registry } from 'prom-client';
import type { RedisClient } from '../bus/connection.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { Logger } from '../util/log.js';
import type { BotUsername, ChatLinks } from './auth/chat-link.js';
import type { DevLoginLink } from './auth/dev-login.js';
import type { Authenticator } from './auth/session.js';
import type { CommandResults } from './command-results.js';
import type { ApiSettings } from './config.js';
import type { RateCounter } from './limits/rate-counter.js';
import type { LiveClient, LiveLimits } from './live/client.js';
import type { LiveHub } from './live/hub.js';
import type { LiveMetrics } from './live/metrics.js';
import type { StreamsView } from './streams-view.js';
import type { LiveQuota } from './live/quota.js';

export interface ApiContext {
  readonly settings: ApiSettings;
  readonly redis: RedisClient;
  readonly db: SqlExecutor;
  readonly log: Logger;
  readonly auth: Authenticator;
  /** The one-time development sign-in link; null when development sign-in is off. */
  readonly devLogin: DevLoginLink | null;
  readonly links: ChatLinks;
  readonly bot: BotUsername;
  readonly hub: LiveHub;
  readonly results: CommandResults;
  readonly liveMetrics: LiveMetrics;
  readonly limits: LiveLimits;
  /** Live connections and subscriptions held, per user and in total (checked against `limits`). */
  readonly liveQuota: LiveQuota;
  /** The process registry (`/metrics`, shared with feed and runner under `marketbus up`). */
  readonly registry: Registry;
  /** The live relay's registry (`/api/v1/live/metrics`; also part of `/metrics`). */
  readonly liveRegistry: Registry;
  /** How long run/stop wait for the runner's answer, ms (0 = answer at once). */
  readonly commandWaitMs: number;
  readonly clients: Set<LiveClient>;
  /** `/api/v1/streams`: one cached bus scan, filtered per user. */
  readonly streams: StreamsView;
  /**
   * The backtest job queue (`POST /strategies/:id/backtests`); null on a Redis Cluster, where BullMQ's
   * node-redis adapter does not work (the routes answer 501).
   */
  readonly backtests: BacktestQueue | null;
  /** The rate limits' counters in Redis, shared by every API process on it (limits/rate-limits.ts). */
  readonly rateCounter: RateCounter;
}
