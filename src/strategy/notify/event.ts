/** The notifier's vocabulary: its modes, the event it is given, and which event types reach Telegram. */
import type { StrategyEventType } from '../../contracts/strategy-events.js';

/** `log_only` logs each notice instead of sending it; `telegram` sends it with the Bot API. */
export type NotifyMode = 'log_only' | 'telegram';

/** The types that reach Telegram; the others are ignored. */
export const NOTIFIED_TYPES: readonly StrategyEventType[] = ['signal', 'trade_open', 'trade_close', 'failed'];

/** A strategy event as the notifier needs it. The optional fields are printed when present. */
export interface NotifyEvent {
  /** Owner of the strategy; `chatFor` turns it into a chat. */
  readonly userId: string;
  readonly type: StrategyEventType;
  readonly strategyId: string;
  readonly runId: string;
  /** e.g. `binance:spot:BTCUSDT`. */
  readonly instrumentKey: string;
  /** The strategy's name as its user knows it. */
  readonly strategyName?: string | undefined;
  /** Candle timeframe, e.g. `1m`. */
  readonly timeframe?: string | undefined;
  /** `signal`: what the strategy signalled, e.g. `buy` or `MA(20,50) cross up`. */
  readonly signal?: string | undefined;
  /** `trade_*` (or `signal`): `long`, `short`, `buy`, `sell`. */
  readonly side?: string | undefined;
  /** Signal or fill price, in quote currency (decimal string or number). */
  readonly price?: string | number | undefined;
  /** Trade size, in base units. */
  readonly quantity?: string | number | undefined;
  /** `trade_close`: realised profit or loss, in quote currency. */
  readonly pnl?: string | number | undefined;
  /** `trade_close`: realised profit or loss, in percent of the entry. */
  readonly pnlPct?: string | number | undefined;
  /** `failed`: what went wrong (people-readable; long texts are cut). */
  readonly error?: string | undefined;
}
