/** What every command shares: the logger, the config, and the way to a Redis client. */
import { InvalidArgumentError, type Command } from 'commander';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { closeRedis, connectRedis, describeRedis, pingRedis, type RedisClient } from '../bus/connection.js';
import { loadConfig, type MarketbusConfig } from '../config/load.js';
import { errorMessage } from '../util/errors.js';
import { RedisUnavailableError } from '../bus/errors.js';
import { createLogger, type Logger } from '../util/log.js';
import { resolveRedisTarget, type RedisTarget } from '../app/redis-target.js';

export interface GlobalOptions {
  readonly redis?: string;
  readonly config?: string;
}

export interface CliContext {
  readonly log: Logger;
  readonly config: MarketbusConfig;
  readonly target: RedisTarget;
  readonly flags: GlobalOptions;
}

export function cliContext(cmd: Command, name = 'cli'): CliContext {
  const flags = cmd.optsWithGlobals<GlobalOptions>();
  const config = loadConfig(flags.config);
  const target = resolveRedisTarget({ flag: flags.redis, section: config.redis, dataDir: config.data_dir });
  return { log: createLogger(name), config, target, flags };
}

export interface ServiceContext extends CliContext {
  /** The process's metrics registry, with Node's default process metrics. */
  readonly registry: Registry;
}

/** What a long-running service command starts from: config, logger, Redis target and a metrics registry. */
export function serviceContext(cmd: Command, name: string): ServiceContext {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return { ...cliContext(cmd, name), registry };
}

/**
 * Connect for a one-shot command: fail fast (no endless reconnect) with a message that says where we
 * looked and how to point elsewhere.
 */
export async function connectForCommand(ctx: CliContext): Promise<RedisClient> {
  try {
    return await connectRedis(
      { ...ctx.target.options, reconnectMaxMs: 1000, initialConnectAttempts: 3 },
      ctx.log,
    ).then(async (c) => {
      await pingRedis(c);
      return c;
    });
  } catch (err) {
    throw new RedisUnavailableError(
      `cannot reach Redis at ${describeRedis(ctx.target.options)} (${ctx.target.origin}): ${errorMessage(err)}. ` +
        'Pass --redis URL, set REDIS_URL, or start `marketbus up`.',
      { cause: err },
    );
  }
}

/** Run `fn` with a connected client and close it afterwards. */
export async function withRedis<T>(ctx: CliContext, fn: (c: RedisClient) => Promise<T>): Promise<T> {
  const client = await connectForCommand(ctx);
  try {
    return await fn(client);
  } finally {
    await closeRedis(client);
  }
}

/** Resolve on the first SIGINT or SIGTERM (a second one exits at once). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = false;
    const on = (sig: NodeJS.Signals): void => {
      if (seen) process.exit(130);
      seen = true;
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export function parseNonNegativeInt(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number >= 0.`);
    return n;
  };
}

export function parsePositiveInt(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}
