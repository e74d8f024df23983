/**
 * The registry: every service that takes commands on the bus, and the command types each accepts with
 * their payload and result schemas (snake_case JSON, as other languages read them).
 *
 * | service       | commands                                        | served by                      |
 * | ------------- | ----------------------------------------------- | ------------------------------ |
 * | `strategy`    | `strategy.run`, `strategy.stop`                 | the live runner (`commands.ts`) |
 * | `backtesting` | `backtest.run`, `backtest.cancel`, `backtest.get` | `marketbus backtester`         |
 *
 * A service is added here first, then served with `serveCommands(redis, SERVICES.<name>, handlers)`.
 */
import { z } from 'zod';
import { defineService, type ServiceSpec } from './registry.js';

const id = z.string().min(1).max(100);
const isoTime = z.iso.datetime({ offset: true });

/** `strategy.run` / `strategy.stop` payload (unchanged from the first strategy commands). */
export const strategyCommandPayload = z.strictObject({ strategy_id: id, run_id: id.optional() });

export const strategyResultPayload = z.strictObject({
  ok: z.boolean(),
  strategy_id: z.string(),
  run_id: z.string().nullable(),
  status: z.string(),
  error: z.string().optional(),
});

export const strategyService = defineService('strategy', 'the strategy live runner: runs start and stop', {
  'strategy.run': {
    description: 'start a run of a stored strategy (stopping its running run first)',
    payload: strategyCommandPayload,
    result: strategyResultPayload,
  },
  'strategy.stop': {
    description: 'stop the running run of a strategy',
    payload: strategyCommandPayload,
    result: strategyResultPayload,
  },
});

export const BACKTEST_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type BacktestStatus = (typeof BACKTEST_STATUSES)[number];

/** A backtest as the service reports it (`backtest.get`, the API's `GET /backtests/:id`). */
export const backtestView = z.strictObject({
  id: z.string(),
  strategy_id: z.string(),
  user_id: z.string(),
  status: z.enum(BACKTEST_STATUSES),
  /** 0..1, of the candles in the range. */
  progress: z.number().min(0).max(1),
  from: isoTime,
  to: isoTime,
  attempts: z.number().int().min(0),
  cancel_requested: z.boolean(),
  error: z.string().nullable(),
  created_at: isoTime,
  started_at: isoTime.nullable(),
  finished_at: isoTime.nullable(),
  /** The BacktestResult (`backtest-result.ts`) once done (partial when cancelled), else null. */
  result: z.record(z.string(), z.unknown()).nullable(),
});
export type BacktestView = z.output<typeof backtestView>;

export const backtestRunPayload = z.strictObject({
  strategy_id: id,
  /** First candle open time included (ISO-8601). */
  from: isoTime,
  /** Candle open times before this are included (ISO-8601, exclusive). */
  to: isoTime,
  /** When given, the strategy must belong to this user. */
  user_id: id.optional(),
});

export const backtestingService = defineService(
  'backtesting',
  'backtests of stored strategies over stored candle history, as queued jobs',
  {
    'backtest.run': {
      description: 'queue a backtest of a stored strategy over [from, to); answers with its id',
      payload: backtestRunPayload,
      result: z.strictObject({ backtest_id: z.string(), status: z.enum(BACKTEST_STATUSES) }),
    },
    'backtest.cancel': {
      description: 'cancel a queued or running backtest (a running one stops at its next page)',
      payload: z.strictObject({ backtest_id: id }),
      result: z.strictObject({
        backtest_id: z.string(),
        status: z.enum(BACKTEST_STATUSES),
        cancel_requested: z.boolean(),
      }),
    },
    'backtest.get': {
      description: 'a backtest with its status, progress and (when finished) result',
      payload: z.strictObject({ backtest_id: id, include_result: z.boolean().default(true) }),
      result: z.strictObject({ backtest: backtestView }),
    },
  },
);

/** Every service of the registry, by name. */
export const SERVICES = {
  strategy: strategyService,
  backtesting: backtestingService,
} as const satisfies Readonly<Record<string, ServiceSpec>>;

export type ServiceName = keyof typeof SERVICES;

export function isServiceName(name: string): name is ServiceName {
  return Object.hasOwn(SERVICES, name);
}
