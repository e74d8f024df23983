/**
 * Strategies of the signed-in user (steps 3-5 of the smoke scenario in docs/runbook.md). Everything here
 * is scoped to that user: another user's strategy id answers 404, exactly like an id that does not exist.
 *
 * - `POST /strategies` (payload: docs/contracts.md §14.2; `parseStrategySpec`): 201 with the strategy
 *   (`strategy_id`, ...); 400 `{ error, code: "strategy_invalid", field }` naming the offending field.
 * - `GET /strategies`: `{ strategies: [...] }`, oldest first.
 * - `GET /strategies/:id`: the strategy with its latest run.
 * - `POST /strategies/:id/run`: a new run id, `strategy.run` on `mgmt:strategy:commands`; 202
 *   `{ strategy_id, run_id, command_id, status }` where status is the runner's answer when it comes
 *   within the wait (`running`), else `pending`; 409 when the runner refuses.
 * - `POST /strategies/:id/stop`: `strategy.stop`; 202 `{ strategy_id, run_id, command_id, status }`.
 * - `GET /strategies/:id/events?limit=50&before=<id>` and `GET /strategies/:id/metrics?...`: the newest
 *   entries of the user's output stream that belong to this strategy, newest first, decoded with
 *   `outputCodec`; `next_before` pages further back (null at the end of what was scanned).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { streams } from '../../contracts/catalog.js';
import { parseEntries } from '../../bus/replies.js';
import { isStreamId, STREAM_ID_EXPECTED } from '../../bus/stream-id.js';
import {
  createStrategy,
  getStrategy,
  listStrategies,
  runsOfStrategy,
  type RunRecord,
  type StrategyRecord,
} from '../../strategy/store.js';
import { errorMessage } from '../../util/errors.js';
import { sendStrategyCommand, type StrategyCommandType } from '../../strategy/commands.js';
import { outputCodec } from '../../strategy/outputs.js';
import { parseStrategySpec, strategySpecToPayload } from '../../strategy/spec.js';
import type { CommandOutcome } from '../command-results.js';
import type { ApiContext } from '../context.js';
import { ApiError, notFound, StrategyCommandRefusedError, withTimeout } from '../http-errors.js';
import { sendCommand } from '../../bus/raw-command.js';

const ID_RE = /^[A-Za-z0-9_-]{1,100}$/;
const PAGE = 500;
const MAX_SCANNED = 20_000;

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

function strategyJson(s: StrategyRecord, runs: readonly RunRecord[]) {
  const run = runs[runs.length - 1];
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
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.string().refine(isStreamId, STREAM_ID_EXPECTED).optional(),
});

export function strategyRoutes(app: FastifyInstance, ctx: ApiContext): void {
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
    const s = await createStrategy(ctx.db, who.id, spec.name, strategySpecToPayload(spec));
    ctx.log.info({ userId: who.id, strategyId: s.id }, 'strategy created');
    return reply.code(201).send(strategyJson(s, []));
  });

  app.get('/strategies', async (req) => {
    const who = await ctx.auth.require(req);
    const list = await listStrategies(ctx.db, who.id);
    const runs = await Promise.all(list.map((s) => runsOfStrategy(ctx.db, s.id)));
    return { strategies: list.map((s, i) => strategyJson(s, runs[i] ?? [])) };
  });

  app.get<{ Params: { id: string } }>('/strategies/:id', async (req) => {
    const { s } = await own(req);
    return strategyJson(s, await runsOfStrategy(ctx.db, s.id));
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
    const runId = randomUUID();
    const { commandId, result } = await command('strategy.run', s.id, runId);
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
    const q = OutputQuery.safeParse(req.query);
    if (!q.success) {
      const issue = q.error.issues[0];
      throw new ApiError('BAD_QUERY', `${issue?.path.join('.') ?? 'query'}: ${issue?.message ?? ''}`);
    }
    const stream = kind === 'events' ? streams.strategyEvents(who.id) : streams.strategyMetrics(who.id);
    const found: ReturnType<typeof outputJson>[] = [];
    let end = q.data.before ? `(${q.data.before}` : '+';
    let scanned = 0;
    let more = false;
    while (found.length < q.data.limit && scanned < MAX_SCANNED) {
      const raw = await withTimeout(
        sendCommand(ctx.redis, ['XREVRANGE', stream, end, '-', 'COUNT', String(PAGE)]),
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
        if (found.length >= q.data.limit) break;
      }
      more = entries.length === PAGE || found.length >= q.data.limit;
      if (entries.length < PAGE) break;
    }
    const last = found[found.length - 1];
    return {
      strategy_id: s.id,
      [kind]: found,
      next_before: more ? (found.length >= q.data.limit && last ? last.id : end.slice(1)) : null,
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
