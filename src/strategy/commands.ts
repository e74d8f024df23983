/**
 * Runs start and stop through commands on the bus (`mgmt:strategy:commands`, docs/contracts.md §11.2),
 * which the API sends, served through the generic command layer (`commands/server.ts`): one runner instance
 * handles each command (consumer group `strategy.workers`); it updates the run in the database,
 * publishes `started` / `stopped` (exactly once), and answers on the command's callback stream
 * (default `strategy:mgmt:results`) with the command's correlation id, once per command. Malformed
 * commands are answered with an error and dead-lettered; heartbeats go to `strategy:status`.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Envelope } from '../bus/codec.js';
import type { RedisClient } from '../bus/connection.js';
import type { BusMetrics } from '../bus/metrics.js';
import { getStrategy, startRun, stopRun, type StrategyRecord } from './store.js';
import type { SqlExecutor } from '../sql/executor.js';
import { errorMessage } from '../util/errors.js';
import { sendCommand } from '../commands/client.js';
import { CommandServer, type CommandHandlers } from '../commands/server.js';
import { strategyCommandPayload, strategyResultPayload, strategyService } from '../commands/services.js';
import type { Logger } from '../util/log.js';
import type { OutputPublisher, RunRef } from './outputs.js';
import { parseStrategySpec } from './spec.js';

export const STRATEGY_SERVICE = strategyService.name;

export type StrategyCommandPayload = z.infer<typeof strategyCommandPayload>;

export type StrategyResultPayload = z.infer<typeof strategyResultPayload>;

export type StrategyCommandType = 'strategy.run' | 'strategy.stop';

/** Send a command (what the API does). Returns the command envelope; results carry its id. */
export async function sendStrategyCommand(
  redis: RedisClient,
  type: StrategyCommandType,
  payload: StrategyCommandPayload,
  source = 'api',
): Promise<Envelope<StrategyCommandPayload>> {
  return sendCommand(redis, strategyService, type, payload, { source });
}

export function createCommandConsumer(d: {
  redis: RedisClient;
  db: SqlExecutor;
  outputs: OutputPublisher;
  log: Logger;
  consumer: string;
  metrics?: BusMetrics;
  blockMs?: number;
}): CommandServer<typeof strategyService> {
  const ref = (
    strategy: StrategyRecord,
    runId: string,
    instrumentKey: string,
    timeframe: string,
  ): RunRef => ({
    runId,
    strategyId: strategy.id,
    strategyName: strategy.name,
    userId: strategy.userId,
    instrumentKey,
    timeframe,
  });
  const unknown = (strategyId: string): StrategyResultPayload => ({
    ok: false,
    strategy_id: strategyId,
    run_id: null,
    status: 'unknown',
    error: 'no such strategy',
  });
  const handlers: CommandHandlers<typeof strategyService> = {
    'strategy.run': async (p) => {
      const strategy = await getStrategy(d.db, p.strategy_id);
      if (!strategy) return unknown(p.strategy_id);
      let spec;
      try {
        spec = parseStrategySpec(strategy.spec);
      } catch (err) {
        return {
          ok: false,
          strategy_id: strategy.id,
          run_id: null,
          status: 'invalid',
          error: errorMessage(err),
        };
      }
      // `started` goes out before the run is visible to runners, so it comes first in the user's stream.
      const runId = p.run_id ?? randomUUID();
      await d.outputs.event(ref(strategy, runId, spec.instrumentKey, spec.timeframe), 'started', 0, null, {
        signal_template: spec.signalTemplate,
      });
      const run = await startRun(d.db, strategy, spec.instrumentKey, runId);
      return { ok: true, strategy_id: strategy.id, run_id: run.id, status: 'running' };
    },
    'strategy.stop': async (p) => {
      const strategy = await getStrategy(d.db, p.strategy_id);
      if (!strategy) return unknown(p.strategy_id);
      const run = await stopRun(d.db, strategy.id);
      if (run) {
        const spec = parseStrategySpec(strategy.spec);
        const r = ref(strategy, run.id, run.instrumentKey, spec.timeframe);
        await d.outputs.fence(r); // nothing of this run after `stopped`
        await d.outputs.event(r, 'stopped', 0, null);
      }
      return { ok: true, strategy_id: strategy.id, run_id: run?.id ?? null, status: 'stopped' };
    },
  };
  return new CommandServer(d.redis, strategyService, handlers, {
    consumer: d.consumer,
    source: 'strategy-runner',
    blockMs: d.blockMs ?? 1000,
    metrics: d.metrics,
    log: d.log,
  });
}
