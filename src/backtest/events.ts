/**
 * A finished backtest is announced on `backtesting:mgmt:results`, once (publishOnce keyed by the
 * backtest id), as an envelope of type `backtest.completed`, `backtest.failed` or `backtest.cancelled`
 * with the correlation id of the `backtest.run` command that created it (or the backtest id when it
 * was created directly), so a requester can follow its command to the end. Payload:
 *
 *   { backtest_id, strategy_id, user_id, status, from, to, error, summary, equity_curve,
 *     trades (the first MAX_EVENT_TRADES), trades_total, signals_total, complete }
 *
 * The full result (every trade and signal) is in the store (`GET /backtests/:id`, `backtest.get`).
 */
import { streams } from '../contracts/catalog.js';
import { envelopeFields, makeEnvelope } from '../bus/codec.js';
import type { RedisClient } from '../bus/connection.js';
import type { BacktestRecord } from './store.js';
import { publishOnce } from '../commands/reply-once.js';
import { backtestingService } from '../commands/services.js';

export const MAX_EVENT_TRADES = 1000;
export const BACKTEST_EVENT_SOURCE = 'backtester';

export type BacktestEventType = 'backtest.completed' | 'backtest.failed' | 'backtest.cancelled';

export function backtestEventType(status: BacktestRecord['status']): BacktestEventType | null {
  return status === 'done'
    ? 'backtest.completed'
    : status === 'failed'
      ? 'backtest.failed'
      : status === 'cancelled'
        ? 'backtest.cancelled'
        : null;
}

function arrayField(r: Readonly<Record<string, unknown>> | null, k: string): unknown[] {
  const v = r?.[k];
  return Array.isArray(v) ? v : [];
}

/** Publish the end of a finished backtest (read with its result). False when it was published before. */
export async function publishBacktestFinished(redis: RedisClient, b: BacktestRecord): Promise<boolean> {
  const type = backtestEventType(b.status);
  if (!type) return false;
  const trades = arrayField(b.result, 'trades');
  const payload = {
    backtest_id: b.id,
    strategy_id: b.strategyId,
    user_id: b.userId,
    status: b.status,
    from: new Date(b.from).toISOString(),
    to: new Date(b.to).toISOString(),
    error: b.error,
    complete: b.result?.['complete'] === true,
    summary: b.result?.['summary'] ?? null,
    equity_curve: arrayField(b.result, 'equity_curve'),
    trades: trades.slice(0, MAX_EVENT_TRADES),
    trades_total: trades.length,
    signals_total: arrayField(b.result, 'signals').length,
  };
  const env = makeEnvelope(type, BACKTEST_EVENT_SOURCE, payload, { correlationId: b.correlationId || b.id });
  const r = await publishOnce(
    redis,
    streams.serviceResults(backtestingService.name),
    `backtest-finished:${b.id}`,
    { ...envelopeFields(env), backtest_id: b.id },
  );
  return r.added;
}
