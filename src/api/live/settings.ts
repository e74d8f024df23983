/**
 * The live relay's settings from the environment (read by `apiSettingsFromEnv`, src/api/config.ts).
 * Each is a positive integer; unset means the default of `DEFAULT_LIVE_LIMITS` / `LIVE_HUB_DEFAULTS`.
 *
 * | variable                               | setting                                  | default |
 * | -------------------------------------- | ---------------------------------------- | ------- |
 * | `LIVE_MAX_CONNECTIONS_PER_USER`        | `maxClientsPerUser`, connections         | 20      |
 * | `LIVE_MAX_SUBSCRIPTIONS_PER_CONNECTION`| `maxSubscriptions`, subscriptions        | 100     |
 * | `LIVE_MAX_SUBSCRIPTIONS_PER_USER`      | `maxSubscriptionsPerUser`, subscriptions | 200     |
 * | `LIVE_MAX_SUBSCRIPTIONS_TOTAL`         | `maxSubscriptionsTotal`, subscriptions   | 20000   |
 * | `LIVE_SUBSCRIBE_MESSAGES`              | `subscribeMessages`, requests per window | 100     |
 * | `LIVE_SUBSCRIBE_WINDOW_MS`             | `subscribeWindowMs`, ms                  | 10000   |
 * | `LIVE_REBUILD_INTERVAL_MS`             | `rebuildIntervalMs` of the hub, ms       | 50      |
 */
import { DEFAULT_LIVE_LIMITS, type LiveLimits } from './client.js';
import { LIVE_HUB_DEFAULTS } from './hub.js';

export type LiveSettings = Pick<
  LiveLimits,
  | 'maxClientsPerUser'
  | 'maxSubscriptions'
  | 'maxSubscriptionsPerUser'
  | 'maxSubscriptionsTotal'
  | 'subscribeMessages'
  | 'subscribeWindowMs'
> & { readonly rebuildIntervalMs: number };

/** `readInt(key, fallback)`: the variable as a positive integer, `fallback` when unset. */
export function liveSettingsFromEnv(readInt: (key: string, fallback: number) => number): LiveSettings {
  const l = DEFAULT_LIVE_LIMITS;
  return {
    maxClientsPerUser: readInt('LIVE_MAX_CONNECTIONS_PER_USER', l.maxClientsPerUser),
    maxSubscriptions: readInt('LIVE_MAX_SUBSCRIPTIONS_PER_CONNECTION', l.maxSubscriptions),
    maxSubscriptionsPerUser: readInt('LIVE_MAX_SUBSCRIPTIONS_PER_USER', l.maxSubscriptionsPerUser),
    maxSubscriptionsTotal: readInt('LIVE_MAX_SUBSCRIPTIONS_TOTAL', l.maxSubscriptionsTotal),
    subscribeMessages: readInt('LIVE_SUBSCRIBE_MESSAGES', l.subscribeMessages),
    subscribeWindowMs: readInt('LIVE_SUBSCRIBE_WINDOW_MS', l.subscribeWindowMs),
    rebuildIntervalMs: readInt('LIVE_REBUILD_INTERVAL_MS', LIVE_HUB_DEFAULTS.rebuildIntervalMs),
  };
}
