/**
 * A strategy runner in its own process, for the failover test. Env: REDIS_URL, DATABASE_URL, INSTANCE,
 * LEASE_TTL_MS. Prints "ready" once running.
 */
import { redisOptionsFromEnv } from '../../src/bus/connection.js';
import { Registry } from 'prom-client';
import { openRelationalDb } from '../../src/app/open-db.js';
import { silentLogger } from '../../src/util/log.js';
import { startRunner } from '../../src/app/runner.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`missing ${k}`);
  return v;
};
const db = openRelationalDb({ databaseUrl: env('DATABASE_URL') }, silentLogger);
await db.migrate();
const rt = await startRunner({
  redis: redisOptionsFromEnv({ url: env('REDIS_URL') }),
  db: db.sql,
  candles: db.candles,
  registry: new Registry(),
  log: silentLogger,
  notifyMode: 'log_only',
  instanceId: env('INSTANCE'),
  leaseTtlMs: Number(env('LEASE_TTL_MS')),
  syncIntervalMs: 200,
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void rt
    .close()
    .then(() => db.close())
    .then(() => process.exit(0));
});
