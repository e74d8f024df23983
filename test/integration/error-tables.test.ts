/**
 * The error tables agree with what the API and the CLI actually answer: status and body code from
 * HTTP_ERRORS, exit code from EXIT_CODES, for a few codes reached through the real server and CLI.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_ERRORS } from '../../src/api/error-status.js';
import type { ApiService } from '../../src/app/start-api.js';
import { openRelationalDb, type RelationalDb } from '../../src/app/open-db.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import type { ErrorCode } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { BOT_TOKEN, HttpClient, signedLoginPayload, startApi, testSettings } from '../helpers/api.js';
import { runCli } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import { redisOptions, startRedis, type TestRedis } from '../helpers/redis.js';

let server: TestRedis;
let db: RelationalDb;
let api: ApiService;

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  db = openRelationalDb({ databaseUrl: (await startPostgres()).url }, silentLogger);
  await db.migrate();
  api = await startApi({
    redis: redisOptions(server),
    db: db.sql,
    settings: testSettings({ TELEGRAM_BOT_TOKEN: BOT_TOKEN }),
  });
});

afterAll(async () => {
  await api.close();
  await db.close();
});

function expectAnswer(r: { status: number; body: unknown }, code: ErrorCode): void {
  expect(r.status).toBe(HTTP_ERRORS[code].status);
  expect(r.body).toMatchObject({ code: HTTP_ERRORS[code].code });
}

describe('HTTP_ERRORS is what the API answers', () => {
  it('NOT_FOUND, UNAUTHORIZED, CROSS_ORIGIN, TELEGRAM_BAD_HASH, TELEGRAM_MALFORMED', async () => {
    const c = new HttpClient(api.url);
    expectAnswer(await c.get('/no/such/route'), 'NOT_FOUND');
    expectAnswer(await c.get('/auth/current-user'), 'UNAUTHORIZED');
    expectAnswer(
      await c.request('POST', '/auth/logout', { headers: { origin: 'https://evil.example' } }),
      'CROSS_ORIGIN',
    );
    const forged = { ...signedLoginPayload(BOT_TOKEN), hash: 'a'.repeat(64) };
    expectAnswer(await c.post('/auth/telegram/login', forged), 'TELEGRAM_BAD_HASH');
    expectAnswer(await c.post('/auth/telegram/login', { hash: 'nope' }), 'TELEGRAM_MALFORMED');
  });
});

describe('EXIT_CODES is how the CLI exits', () => {
  it('CONFIG_INVALID, REDIS_UNAVAILABLE, DLQ_REPLAY_REFUSED', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mb-exit-'));
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'redis:\n  port: "six"\n');
    const broken = await runCli(['streams', 'inspect', '--config', cfg]);
    expect(broken.stderr).toContain('[CONFIG_INVALID]');
    expect(broken.code).toBe(EXIT_CODES.CONFIG_INVALID);
    const down = await runCli(['streams', 'inspect', '--redis', 'redis://127.0.0.1:1']);
    expect(down.stderr).toContain('[REDIS_UNAVAILABLE]');
    expect(down.code).toBe(EXIT_CODES.REDIS_UNAVAILABLE);
    const refused = await runCli(['dlq', 'replay', 'md.candles.1m.sim:spot:BTCUSDT', '--redis', server.url]);
    expect(refused.stderr).toContain('[DLQ_REPLAY_REFUSED]');
    expect(refused.code).toBe(EXIT_CODES.DLQ_REPLAY_REFUSED);
  });
});
