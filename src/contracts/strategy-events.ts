/**
 * The public contract of the per-user strategy event stream `strategy.events.v1.user.<user_id>`
 * (written by the strategy runner, `strategy/outputs.ts`; read by the API's live feed, the Telegram
 * notifier and anyone else subscribed).
 */

/** The event types of `strategy.events.v1.user.<id>`. */
export type StrategyEventType = 'started' | 'signal' | 'trade_open' | 'trade_close' | 'failed' | 'stopped';
