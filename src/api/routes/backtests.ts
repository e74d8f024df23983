/**
 * Backtests from the API (issue 7): `POST /strategies/:id/backtests` queues one over a stored range of
 * the user's strategy; `GET /backtests/:id` gives status, progress and, when done, the result (trades,
 * equity curve, PnL, drawdown, win rate); `GET /strategies/:id/backtests` lists them;
 * `POST /backtests/:id/cancel` stops one. Another user's backtest or strategy is a 404.
 *
 * Limits (src/api/limits/settings.ts): a range of at most `MAX_BACKTEST_DAYS` (400 `invalid_range`),
 * at most `MAX_QUEUED_BACKTESTS_PER_USER` queued or running (429 `quota_exceeded`); the list is paged
 * (`limit`, `after`; `{ backtests, next_after }`, newest first).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BacktestQueue } from '../../backtest/queue.js';
import { backtestToView } from '../../backtest/store.js';
import { cancelBacktest, createBacktest, getBacktest, listBacktests } from '../../backtest/backtests.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../http-errors.js';
import { KeyedSerial } from '../limits/serial.js';
import { pageOf, parsePage } from '../paging.js';

const Body = z
  .object({ from: z.union([z.string().max(64), z.number()]), to: z.union([z.string().max(64), z.number()]) })
  .strict();

export function backtestRoutes(app: FastifyInstance, ctx: ApiContext, queue: BacktestQueue | null): void {
  const limits = ctx.settings.limits;
  /** A user's backtest requests, counted one at a time in this process. */
  const serial = new KeyedSerial();
  const jobDeps = () => {
    if (!queue)
      throw new ApiError(
        'BACKTESTS_UNAVAILABLE',
        'backtests need a single Redis server: BullMQ has no Redis Cluster support on node-redis',
      );
    return { db: ctx.db, queue, redis: ctx.redis, log: ctx.log };
  };

  app.post<{ Params: { id: string } }>('/strategies/:id/backtests', async (req, reply) => {
    const who = await ctx.auth.require(req);
    const deps = jobDeps();
    const body = Body.safeParse(req.body);
    if (!body.success) {
      const issue = body.error.issues[0];
      throw new ApiError('BAD_REQUEST', issue?.message ?? 'invalid body', {
        field: issue?.path.join('.') ?? '',
      });
    }
    const b = await serial.run(`backtests:${who.id}`, () =>
      createBacktest(deps, {
        strategyId: req.params.id,
        userId: who.id,
        from: body.data.from,
        to: body.data.to,
        maxSpanMs: limits.maxBacktestDays * 86_400_000,
        maxActivePerUser: limits.maxQueuedBacktestsPerUser,
      }),
    );
    return reply.code(202).send(backtestToView(b));
  });

  app.get<{ Params: { id: string } }>('/strategies/:id/backtests', async (req) => {
    const who = await ctx.auth.require(req);
    const { limit, after } = parsePage(req.query, limits);
    const [list, next] = pageOf(
      await listBacktests(ctx.db, { strategyId: req.params.id, userId: who.id }, { limit: limit + 1, after }),
      limit,
      (b) => b.id,
    );
    return { backtests: list.map((b) => ({ ...backtestToView(b), result: null })), next_after: next };
  });

  app.get<{ Params: { id: string } }>('/backtests/:id', async (req) => {
    const who = await ctx.auth.require(req);
    const b = await getBacktest(ctx.db, req.params.id, { userId: who.id });
    if (!b) throw new ApiError('NOT_FOUND', 'backtest not found');
    return backtestToView(b);
  });

  app.post<{ Params: { id: string } }>('/backtests/:id/cancel', async (req) => {
    const who = await ctx.auth.require(req);
    return backtestToView(await cancelBacktest(jobDeps(), req.params.id, { userId: who.id }));
  });
}
