/**
 * Backtests as the API and the `backtesting` service see them:
 *
 *   createBacktest(deps, { strategyId, from, to, userId? })   POST /strategies/:id/backtests
 *   getBacktest(db, id, { userId? })                           GET /backtests/:id
 *   cancelBacktest(deps, id, { userId? })                      (DELETE /backtests/:id or POST .../cancel)
 *   listBacktests(db, { strategyId?, userId? })                GET /strategies/:id/backtests
 *
 * Errors are typed: NotFoundError (404; also for another user's strategy or backtest),
 * InvalidRangeError (400), StrategyInvalidError (422). `backtestHandlers` serves the same operations
 * as the commands `backtest.run`, `backtest.cancel` and `backtest.get`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { RedisClient } from '../bus/connection.js';
import { getStrategy } from '../strategy/store.js';
import { InvalidRangeError, NotFoundError } from '../util/errors.js';
import type { SqlExecutor } from '../sql/executor.js';
import type { Logger } from '../util/log.js';
import { parseStrategySpec } from '../strategy/spec.js';
import { publishBacktestFinished } from './events.js';
import type { BacktestQueue } from './queue.js';
import {
  backtestToView,
  insertBacktest,
  requestCancel,
  selectBacktest,
  selectBacktests,
  type BacktestRecord,
} from './store.js';
import type { CommandHandlers } from '../commands/server.js';
import type { backtestingService } from '../commands/services.js';

export interface BacktestDeps {
  readonly db: SqlExecutor;
  readonly queue: BacktestQueue;
  /** For announcing backtests cancelled before they ran (on `backtesting:mgmt:results`). */
  readonly redis: RedisClient;
  readonly log?: Logger;
}

/** Longest range a backtest may cover (the API asks for less: `MAX_BACKTEST_DAYS`). */
export const MAX_BACKTEST_SPAN_MS = 3 * 366 * 86_400_000;

export interface CreateBacktestInput {
  readonly strategyId: string;
  /** Epoch ms, ISO-8601 text or a Date: candles with `from <= ts_open < to`. */
  readonly from: number | string | Date;
  readonly to: number | string | Date;
  /** When given, the strategy must belong to this user (else NotFoundError). */
  readonly userId?: string | undefined;
  /** Default a new UUID. The same id again returns the existing backtest (idempotent). */
  readonly id?: string;
  /** Carried by the announcement of its end. Default the backtest id. */
  readonly correlationId?: string;
  /** Longest range, ms; at most (and by default) `MAX_BACKTEST_SPAN_MS`. */
  readonly maxSpanMs?: number;
  /** When given, a user with this many backtests queued or running gets a QuotaExceededError. */
  readonly maxActivePerUser?: number;
}

function toMs(v: number | string | Date, name: string): number {
  const ms = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(ms)) throw new InvalidRangeError(`${name} is not a valid time: ${String(v)}`);
  return ms;
}

/** The backtest id of a `backtest.run` command: a redelivered command finds the same backtest. */
export function backtestIdForCommand(commandId: string): string {
  const h = createHash('sha256').update(`backtest.run:${commandId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Validate, store (queued) and enqueue a backtest. */
export async function createBacktest(
  deps: BacktestDeps,
  input: CreateBacktestInput,
): Promise<BacktestRecord> {
  const from = toMs(input.from, 'from');
  const to = toMs(input.to, 'to');
  if (from >= to) throw new InvalidRangeError(`from (${new Date(from).toISOString()}) must be before to`);
  const maxSpan = Math.min(input.maxSpanMs ?? MAX_BACKTEST_SPAN_MS, MAX_BACKTEST_SPAN_MS);
  if (to - from > maxSpan)
    throw new InvalidRangeError(`a backtest covers at most ${maxSpan / 86_400_000} days`);
  const strategy = await getStrategy(deps.db, input.strategyId);
  if (!strategy || (input.userId !== undefined && strategy.userId !== input.userId))
    throw new NotFoundError('strategy', input.strategyId);
  parseStrategySpec(strategy.spec); // StrategyInvalidError now rather than a failed job later
  const id = input.id ?? randomUUID();
  const rec = await insertBacktest(deps.db, {
    id,
    strategyId: strategy.id,
    userId: strategy.userId,
    from,
    to,
    correlationId: input.correlationId ?? id,
    maxActivePerUser: input.maxActivePerUser,
  });
  if (rec.status === 'queued') await deps.queue.enqueue(rec.id);
  deps.log?.info({ backtest: rec.id, strategy: strategy.id }, 'backtest queued');
  return rec;
}

/** A backtest with its result; null when unknown or (with `userId`) another user's. */
export async function getBacktest(
  db: SqlExecutor,
  id: string,
  opts: { userId?: string; includeResult?: boolean } = {},
): Promise<BacktestRecord | null> {
  const b = await selectBacktest(db, id, opts.includeResult ?? true);
  return b && (opts.userId === undefined || b.userId === opts.userId) ? b : null;
}

/** Backtests of a strategy or a user, newest first, without results: at most `limit`, after `after`. */
export function listBacktests(
  db: SqlExecutor,
  by: { strategyId?: string; userId?: string },
  page: { limit?: number; after?: string | undefined } = {},
): Promise<BacktestRecord[]> {
  return selectBacktests(db, by, page);
}

/**
 * Cancel a backtest: a queued one is cancelled now (and its job dropped), a running one stops at its
 * worker's next page. Finished ones are returned unchanged.
 */
export async function cancelBacktest(
  deps: BacktestDeps,
  id: string,
  opts: { userId?: string } = {},
): Promise<BacktestRecord> {
  const found = await getBacktest(deps.db, id, { ...opts, includeResult: false });
  if (!found) throw new NotFoundError('backtest', id);
  const b = await requestCancel(deps.db, id);
  if (!b) throw new NotFoundError('backtest', id);
  if (b.status === 'cancelled' && found.status === 'queued') {
    // Cancelled before it ran: drop its job and announce the end here (a worker that got the job
    // anyway finds it cancelled; the announcement is made once either way).
    await deps.queue.remove(id).catch(() => false);
    await publishBacktestFinished(deps.redis, b);
  }
  deps.log?.info({ backtest: id, status: b.status }, 'backtest cancel requested');
  return b;
}

/** The `backtesting` service's handlers. */
export function backtestHandlers(deps: BacktestDeps): CommandHandlers<typeof backtestingService> {
  return {
    'backtest.run': async (p, ctx) => {
      const b = await createBacktest(deps, {
        strategyId: p.strategy_id,
        from: p.from,
        to: p.to,
        userId: p.user_id,
        id: backtestIdForCommand(ctx.command.id),
        correlationId: ctx.command.correlationId || ctx.command.id,
      });
      return { backtest_id: b.id, status: b.status };
    },
    'backtest.cancel': async (p) => {
      const b = await cancelBacktest(deps, p.backtest_id);
      return { backtest_id: b.id, status: b.status, cancel_requested: b.cancelRequested };
    },
    'backtest.get': async (p) => {
      const b = await getBacktest(deps.db, p.backtest_id, { includeResult: p.include_result });
      if (!b) throw new NotFoundError('backtest', p.backtest_id);
      return { backtest: backtestToView(b) };
    },
  };
}
