/**
 * A candle subscription in its own process, for the kill-and-restart test. Env: REDIS_URL,
 * DATABASE_URL, INSTRUMENT, FROM (epoch ms), GROUP, CONSUMER, OUT (stream), DELAY_MS.
 * Each yielded candle is written to OUT with the ID `<ts_open>-0` (a deterministic output, so a
 * redelivered candle cannot produce a second entry) and counted in the hash `yields:{<OUT>}:<CONSUMER>`
 * (hash-tagged to OUT's slot: one MULTI on a cluster too).
 */
import { connectRedis, redisOptionsFromEnv } from '../../src/bus/connection.js';
import { createPostgresStore } from '../../src/history/postgres-store.js';
import { subscribeCandles } from '../../src/history/subscription.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`missing ${k}`);
  return v;
};
const redis = await connectRedis(redisOptionsFromEnv({ url: env('REDIS_URL') }));
const store = createPostgresStore({ url: env('DATABASE_URL') });
const out = env('OUT');
const delay = Number(process.env['DELAY_MS'] ?? '0');
process.stdout.write('ready\n');
for await (const { candle } of subscribeCandles({
  redis,
  store,
  instrumentKey: env('INSTRUMENT'),
  from: Number(env('FROM')),
  group: env('GROUP'),
  consumer: env('CONSUMER'),
  blockMs: 200,
})) {
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  await redis
    .multi()
    .xAdd(out, `${candle.tsOpen}-0`, { close: String(candle.close) })
    .hIncrBy(`yields:{${out}}:${env('CONSUMER')}`, String(candle.tsOpen), 1)
    .exec()
    .catch(() => undefined); // a duplicate ID is the exactly-once effect at work
}
