/**
 * Strategies of the signed-in user (steps 3-5 of the smoke scenario in docs/runbook.md). Everything here
 * is scoped to that user: another user's strategy id answers 404, exactly like an id that does not exist.
 *
 * - `POST /strategies` (payload: docs/contracts.md §14.2; `parseStrategySpec`): 201 with the strategy
 *   (`strategy_id`, ...); 400 `{ error, code: "strategy_invalid", field }` naming the offending field.
 * - `GET /strategies?limit=50&after=<id>`: `{ strategies: [...], next_after }`, oldest first, paged
 *   (src/api/paging.ts); 429 `quota_exceeded` on create past `MAX_STRATEGIES_PER_USER`.
 * - `GET /strategies/:id`: the strategy with its latest run.
 * - `POST /strategies/:id/run`: a new run id, `strategy.run` on `mgmt:strategy:commands`; 202
 *   `{ strategy_id, run_id, command_id, status }` where status is the runner's answer when it comes
 *   within the wait (`running`), else `pending`; 409 when the runner refuses; 429 `quota_exceeded` when
 *   the user has `MAX_RUNNING_PER_USER` other strategies running.
 * - `POST /strategies/:id/stop`: `strategy.stop`; 202 `{ strategy_id, run_id, command_id, status }`.
 * - `GET /strategies/:id/events?limit=50&before=<id>` and `GET /strategies/:id/metrics?...`: the newest
 *   entries of the user's output stream that belong to this strategy, newest first, decoded with
 *   `outputCodec`; `next_before` pages further back (null at the end of the stream). One call looks at
 *   no more than `EVENTS_SCAN_MAX` entries: it may answer fewer than `limit` with a `next_before`.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { streams } from '../../contracts/catalog.js';
import { parseEntries } from '../../bus/replies.js';
import { isStreamId, STREAM_ID_EXPECTED } from '../../bus/stream-id.js';
import {
  countRunningRuns,
  createStrategy,
  getStrategy,
  latestRuns,
  listStrategies,
  type RunRecord,
  type StrategyRecord,
} from '../../strategy/store.js';
import { errorMessage, QuotaExceededError } from '../../util/errors.js';
import { sendStrategyCommand, type StrategyCommandType } from '../../strategy/commands.js';
import { outputCodec } from '../../strategy/outputs.js';
import { parseStrategySpec, strategySpecToPayload } from '../../strategy/spec.js';
import type { CommandOutcome } from '../command-results.js';
import type { ApiContext } from '../context.js';
import { notFound, StrategyCommandRefusedError, withTimeout } from '../http-errors.js';
import { KeyedSerial } from '../limits/serial.js';
import { limitParam, pageLimit, pageOf, parsePage, parseQuery } from '../paging.js';
import { sendCommand } from '../../bus/raw-command.js';

const ID_RE = /^[A-Za-z0-9_-]{1,100}$/;
/** Entries per XREVRANGE of an events read. */
const PAGE = 500;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function runJson(r: RunRecord) {
  return {
    run_id: r.id,
    status: r.status,
    instrument_key: r.instrumentKey,
    started_at: iso(r.startedAt),
    stopped_at: iso(r.stoppedAt),
    error: r.error,
  };
}

function strategyJson(s: StrategyRecord, run: RunRecord | undefined) {
  return {
    strategy_id: s.id,
    user_id: s.userId,
    name: s.name,
    created_at: iso(s.createdAt),
    status: run?.status ?? 'created',
    run: run ? runJson(run) : null,
    spec: s.spec,
  };
}

const OutputQuery = z.object({
  limit: limitParam,
  before: z.string().refine(isStreamId, STREAM_ID_EXPECTED).optional(),
});

export function strategyRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const limits = ctx.settings.limits;
  /** A user's quota-checked requests, one at a time in this process. */
  const serial = new KeyedSerial();
  /** The user's strategy, or 404 (also for another user's: its existence is not revealed). */
  const own = async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const who = await ctx.auth.require(req);
    const id = req.params.id;
    const s = ID_RE.test(id) ? await getStrategy(ctx.db, id) : null;
    if (!s || s.userId !== who.id) throw notFound('strategy not found');
    return { who, s };
  };

  app.post('/strategies', async (req, reply) => {
    const who = await ctx.auth.require(req);
    const spec = parseStrategySpec(req.body);
    const s = await serial.run(`strategies:${who.id}`, () =>
      createStrategy(ctx.db, who.id, spec.name, strategySpecToPayload(spec), {
        maxPerUser: limits.maxStrategiesPerUser,
      }),
    );
    ctx.log.info({ userId: who.id, strategyId: s.id }, 'strategy created');
    return reply.code(201).send(strategyJson(s, undefined));
  });

  app.get('/strategies', async (req) => {
    const who = await ctx.auth.require(req);
    const { limit, after } = parsePage(req.query, limits);
    const [list, next] = pageOf(
      await listStrategies(ctx.db, who.id, { limit: limit + 1, after }),
      limit,
      (s) => s.id,
    );
    const runs = await latestRuns(
      ctx.db,
      list.map((s) => s.id),
    );
    return { strategies: list.map((s) => strategyJson(s, runs.get(s.id))), next_after: next };
  });

  app.get<{ Params: { id: string } }>('/strategies/:id', async (req) => {
    const { s } = await own(req);
    return strategyJson(s, (await latestRuns(ctx.db, [s.id])).get(s.id));
  });

  const command = async (
    type: StrategyCommandType,
    strategyId: string,
    runId: string | undefined,
  ): Promise<{ commandId: string; result: CommandOutcome | null }> => {
    if (ctx.commandWaitMs > 0) {
      // Listen before sending, so the answer cannot slip past; without the hub we just do not wait.
      await withTimeout(ctx.results.ready(), 2000, 'command results').catch((err: unknown) =>
        ctx.log.warn({ err: errorMessage(err) }, 'cannot wait for strategy results'),
      );
    }
    const env = await withTimeout(
      sendStrategyCommand(ctx.redis, type, {
        strategy_id: strategyId,
        run_id: runId || undefined,
      }),
      2000,
      'strategy command',
    );
    return { commandId: env.id, result: await ctx.results.wait(env.id, ctx.commandWaitMs) };
  };

  /** The runner's refusal: its status and text logged, a coded fixed answer sent. */
  const refused = (action: 'run' | 'stop', strategyId: string, r: CommandOutcome): never => {
    ctx.log.warn({ strategyId, status: r.status, err: r.error }, `strategy ${action} refused by the runner`);
    throw new StrategyCommandRefusedError(action, r.status);
  };

  app.post<{ Params: { id: string } }>('/strategies/:id/run', async (req, reply) => {
    const { who, s } = await own(req);
    const max = limits.maxRunningPerUser;
    const runId = randomUUID();
    // Counted and sent one at a time per user, each after the runner's answer (or the wait) for the last.
    const { commandId, result } = await serial.run(`runs:${who.id}`, async () => {
      if ((await countRunningRuns(ctx.db, who.id, s.id)) >= max)
        throw new QuotaExceededError('running_runs', max, `a user runs at most ${max} strategies at once`);
      return command('strategy.run', s.id, runId);
    });
    if (result && !result.ok) refused('run', s.id, result);
    ctx.log.info({ userId: who.id, strategyId: s.id, runId }, 'strategy run requested');
    return reply.code(202).send({
      strategy_id: s.id,
      run_id: runId,
      command_id: commandId,
      status: result ? result.status : 'pending',
    });
  });

  app.post<{ Params: { id: string } }>('/strategies/:id/stop', async (req, reply) => {
    const { who, s } = await own(req);
    const { commandId, result } = await command('strategy.stop', s.id, undefined);
    if (result && !result.ok) refused('stop', s.id, result);
    ctx.log.info({ userId: who.id, strategyId: s.id }, 'strategy stop requested');
    return reply.code(202).send({
      strategy_id: s.id,
      run_id: result?.runId ?? null,
      command_id: commandId,
      status: result ? result.status : 'pending',
    });
  });

  const outputs = (kind: 'events' | 'metrics') => async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const { who, s } = await own(req);
    const q = parseQuery(OutputQuery, req.query);
    const limit = pageLimit(q.limit, limits);
    const stream = kind === 'events' ? streams.strategyEvents(who.id) : streams.strategyMetrics(who.id);
    const found: ReturnType<typeof outputJson>[] = [];
    let end = q.before ? `(${q.before}` : '+';
    let scanned = 0;
    let more = false;
    while (found.length < limit && scanned < limits.eventsScanMax) {
      const count = Math.min(PAGE, limits.eventsScanMax - scanned);
      const raw = await withTimeout(
        sendCommand(ctx.redis, ['XREVRANGE', stream, end, '-', 'COUNT', String(count)]),
        5000,
        'XREVRANGE',
      );
      const { entries } = parseEntries(raw, 'XREVRANGE');
      scanned += entries.length;
      for (const e of entries) {
        end = `(${e.id}`;
        let env;
        try {
          env = outputCodec.decode(e.fields);
        } catch {
          continue; // not ours to judge here; the stream's consumers dead-letter such entries
        }
        if (env.payload['strategy_id'] !== s.id) continue;
        found.push(outputJson(e.id, env));
        if (found.length >= limit) break;
      }
      more = entries.length === count || found.length >= limit;
      if (entries.length < count) break;
    }
    const last = found[found.length - 1];
    return {
      strategy_id: s.id,
      [kind]: found,
      next_before: more ? (found.length >= limit && last ? last.id : end.slice(1)) : null,
    };
  };

  app.get<{ Params: { id: string } }>('/strategies/:id/events', outputs('events'));
  app.get<{ Params: { id: string } }>('/strategies/:id/metrics', outputs('metrics'));
}

function outputJson(id: string, env: ReturnType<typeof outputCodec.decode>) {
  const runId = env.payload['run_id'];
  return {
    id,
    type: env.type,
    event_id: env.id,
    time: env.time,
    run_id: typeof runId === 'string' ? runId : null,
    payload: env.payload,
  };
}
