/**
 * A test service (`echoService`) and, run as a script, one responder process serving it, for the
 * command tests that SIGKILL responders. Env: REDIS_URL, SERVICE, INSTANCE, CLAIM_MIN_IDLE_MS,
 * DIE_AFTER_REPLY=1 (SIGKILL itself right after writing a reply, before the ack). Each handler run is
 * counted with HINCRBY {<service>}:runs <command id> 1 and HSET {<service>}:runner <command id> <instance>
 * (one hash slot, so the MULTI works on a cluster too).
 * Prints "ready" once serving.
 */
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { connectRedis, redisOptionsFromEnv } from '../../src/bus/connection.js';
import { defineService } from '../../src/commands/registry.js';
import { serveCommands } from '../../src/commands/server.js';

export function echoService(name: string) {
  return defineService(name, 'echo, for tests', {
    'echo.say': {
      description: 'answer with the text after delay_ms',
      payload: z.strictObject({
        text: z.string().max(1000),
        delay_ms: z.number().int().min(0).max(60_000).default(0),
      }),
      result: z.strictObject({ text: z.string(), instance: z.string(), deliveries: z.number().int() }),
    },
  });
}

async function main(): Promise<void> {
  const env = (k: string): string => {
    const v = process.env[k];
    if (v === undefined) throw new Error(`missing ${k}`);
    return v;
  };
  const service = env('SERVICE');
  const instance = env('INSTANCE');
  const redis = await connectRedis(redisOptionsFromEnv({ url: env('REDIS_URL') }));
  const server = await serveCommands(
    redis,
    echoService(service),
    {
      'echo.say': async (p, ctx) => {
        await redis
          .multi()
          .hIncrBy(`{${service}}:runs`, ctx.command.id, 1)
          .hSet(`{${service}}:runner`, ctx.command.id, instance)
          .exec();
        if (p.delay_ms > 0) await new Promise((r) => setTimeout(r, p.delay_ms));
        return { text: p.text, instance, deliveries: ctx.deliveries };
      },
    },
    {
      consumer: instance,
      blockMs: 200,
      claimIntervalMs: 200,
      claimMinIdleMs: Number(process.env['CLAIM_MIN_IDLE_MS'] ?? '1000'),
      heartbeatMs: 500,
      onOutcome: (o) => {
        if (o.kind === 'replied' && process.env['DIE_AFTER_REPLY'] === '1')
          process.kill(process.pid, 'SIGKILL');
      },
    },
  );
  process.stdout.write('ready\n');
  const stop = async (): Promise<void> => {
    await server.close();
    await redis.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
