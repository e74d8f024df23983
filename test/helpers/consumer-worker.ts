/**
 * A consumer in its own process, for fault tests that SIGKILL it. Configured by environment:
 * REDIS_URL, STREAMS (comma-separated), GROUP, CONSUMER, DELAY_MS (per entry), CLAIM_MIN_IDLE_MS.
 * Each handled entry is recorded with SADD done:{<GROUP>} <stream>/<id> and HINCRBY seen:{<GROUP>}
 * (one hash slot, so the MULTI works on a cluster too).
 * Prints "ready" once reading.
 */
import { connectRedis, redisOptionsFromEnv } from '../../src/bus/connection.js';
import { StreamConsumer } from '../../src/bus/consumer.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`missing ${k}`);
  return v;
};
const group = env('GROUP');
const consumerName = env('CONSUMER');
const delay = Number(process.env['DELAY_MS'] ?? '0');
const redis = await connectRedis(redisOptionsFromEnv({ url: env('REDIS_URL') }));
const c = new StreamConsumer(redis, {
  group,
  consumer: consumerName,
  streams: env('STREAMS').split(','),
  startId: '0',
  blockMs: 200,
  batchSize: 20,
  claimIntervalMs: 200,
  claimMinIdleMs: Number(process.env['CLAIM_MIN_IDLE_MS'] ?? '1000'),
  handler: async (d) => {
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    await redis
      .multi()
      .sAdd(`done:{${group}}`, `${d.stream}/${d.id}`)
      .hIncrBy(`seen:{${group}}`, consumerName, 1)
      .exec();
  },
});
await c.start();
process.stdout.write('ready\n');
const stop = async (): Promise<void> => {
  await c.close();
  await redis.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
