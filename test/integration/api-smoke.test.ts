/**
 * The smoke scenario of docs/runbook.md (section 3), as written: `marketbus up` runs as a child process
 * with TELEGRAM_BOT_TOKEN set, a test redis-server (`--redis`) and a test PostgreSQL (`DATABASE_URL`);
 * the login payload comes from the runbook's Python snippet; every HTTP step is the runbook's curl
 * command. Then: metrics and events of the run in Redis under the user's id (XLEN), the runner's
 * metrics growing on /metrics, and — after the chat binding is confirmed through the one-time deep
 * link and the bot's webhook — Telegram notices in the log (log_only outside production).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streams } from '../../src/contracts/catalog.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { BOT_TOKEN, WEBHOOK_SECRET } from '../helpers/api.js';
import { startPostgres } from '../helpers/postgres.js';
import { connect, startRedis, waitFor, type TestRedis } from '../helpers/redis.js';

const run = promisify(execFile);
const KEY = 'binance:spot:BTCUSDT';

let server: TestRedis;
let redis: RedisClient;
let child: ChildProcess | undefined;
let stderr = '';
let base = '';
const dir = mkdtempSync(join(tmpdir(), 'marketbus-smoke-'));
const env = { ...process.env, TELEGRAM_BOT_TOKEN: BOT_TOKEN };

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
  const pg = await startPostgres();
  const dbUrl = (await pg.createDatabase()) ?? pg.url;
  // Step 1: the stack. The simulated source publishes the runbook's instrument, 1200x faster than real time.
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'up',
      '--redis',
      server.url,
      '--port',
      '0',
      '--source',
      'simulated',
      '--instruments',
      KEY,
      '--speed',
      '1200',
    ],
    {
      env: {
        ...env,
        REDIS_URL: '',
        CLICKHOUSE_URL: '',
        NODE_ENV: 'development',
        DATABASE_URL: dbUrl,
        TELEGRAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
        TELEGRAM_BOT_USERNAME: 'marketbus_test_bot',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(
    () => /marketbus is up: .* api (http:\/\/127\.0\.0\.1:\d+)/.test(stderr) || child?.exitCode !== null,
    60_000,
    'marketbus up',
  );
  const m = /marketbus is up: .* api (http:\/\/127\.0\.0\.1:(\d+))/.exec(stderr);
  if (!m?.[2]) throw new Error(`marketbus up did not start:\n${stderr.slice(-3000)}`);
  base = `http://localhost:${m[2]}`;
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child?.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A shell step of the runbook (bash, so the runbook's heredocs work as written). */
async function sh(script: string): Promise<string> {
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], {
    cwd: dir,
    env,
    timeout: 30_000,
  });
  return stdout;
}

describe('smoke scenario (docs/runbook.md section 3) against marketbus up', () => {
  it('login, current user, create strategy, run, events and metrics in Redis, notices logged', async () => {
    // Step 2: Telegram login with the runbook's payload generator and curl, keeping the cookie.
    const login = await sh(`
PAYLOAD_JSON="$(python3 - <<'PY'
import hashlib, hmac, json, os, time
bot_token = os.environ["TELEGRAM_BOT_TOKEN"]
payload = {"id":"411001","auth_date":str(int(time.time())),"first_name":"Roe","username":"roehub_test"}
dcs = "\\n".join(f"{k}={v}" for k, v in sorted(payload.items()))
secret = hashlib.sha256(bot_token.encode()).digest()
payload["hash"] = hmac.new(secret, dcs.encode(), hashlib.sha256).hexdigest()
print(json.dumps(payload))
PY
)"

curl -fsS -c cookies.txt \\
  -H 'Content-Type: application/json' \\
  -d "$PAYLOAD_JSON" \\
  ${base}/auth/telegram/login
`);
    expect(JSON.parse(login)).toMatchObject({ username: 'roehub_test', telegram_id: 411001 });
    const me = JSON.parse(await sh(`curl -fsS -b cookies.txt ${base}/auth/current-user`)) as {
      user_id: string;
    };
    expect(me.user_id).toMatch(/^[0-9a-f-]{36}$/);

    // Step 3: the strategy, with the runbook's payload.
    const created = JSON.parse(
      await sh(`curl -fsS -b cookies.txt \\
  -H 'Content-Type: application/json' \\
  -d '{
    "instrument_id": {"market_id": 1, "symbol": "BTCUSDT"},
    "instrument_key": "binance:spot:BTCUSDT",
    "market_type": "spot",
    "timeframe": "1m",
    "indicators": [{"name": "MA", "params": {"fast": 20, "slow": 50}}],
    "signal_template": "MA(20,50)"
  }' \\
  ${base}/strategies`),
    ) as { strategy_id: string };
    expect(created.strategy_id).toMatch(/^[0-9a-f-]{36}$/);

    // Step 6 prerequisite: confirm the chat through the one-time deep link the bot receives.
    const link = JSON.parse(await sh(`curl -fsS -b cookies.txt -X POST ${base}/auth/telegram/link`)) as {
      token: string;
      deep_link: string;
    };
    expect(link.deep_link).toBe(`https://t.me/marketbus_test_bot?start=${link.token}`);
    const update = JSON.stringify({
      update_id: 1,
      message: {
        message_id: 1,
        date: Math.floor(Date.now() / 1000),
        chat: { id: 411001, type: 'private' },
        from: { id: 411001, is_bot: false, first_name: 'Roe' },
        text: `/start ${link.token}`,
      },
    });
    const confirmed = await sh(`curl -fsS -H 'Content-Type: application/json' \\
  -H 'X-Telegram-Bot-Api-Secret-Token: ${WEBHOOK_SECRET}' -d '${update}' ${base}/telegram/webhook`);
    expect(JSON.parse(confirmed)).toMatchObject({ method: 'sendMessage', chat_id: 411001 });

    // Step 4: run.
    const started = JSON.parse(
      await sh(`curl -fsS -b cookies.txt -X POST ${base}/strategies/${created.strategy_id}/run`),
    ) as { run_id: string; status: string };
    expect(started.run_id).toMatch(/^[0-9a-f-]{36}$/);

    // Step 5: the worker works: candles in Redis, metrics and events under the user's id, counters grow.
    expect(await redis.xLen(streams.candles('1m', KEY))).toBeGreaterThan(0);
    await waitFor(
      async () =>
        (await redis.xLen(streams.strategyMetrics(me.user_id))) > 0 &&
        (await redis.xLen(streams.strategyEvents(me.user_id))) > 0,
      60_000,
      'metrics and events under the user id',
    );
    const iterations = async (): Promise<number> => {
      const text = await sh(`curl -fsS ${base}/metrics`);
      const line = text.split('\n').find((l) => l.startsWith('strategy_live_runner_iterations_total'));
      return Number(line?.split(' ').pop() ?? 0);
    };
    const first = await iterations();
    await waitFor(async () => (await iterations()) > first, 30_000, 'iterations growing');
    const events = JSON.parse(
      await sh(`curl -fsS -b cookies.txt ${base}/strategies/${created.strategy_id}/events`),
    ) as { events: { type: string }[] };
    expect(events.events.map((e) => e.type)).toContain('started');

    // Step 6: notices in the log (log_only: not production).
    await waitFor(() => stderr.includes('telegram notice (log_only)'), 90_000, 'a notice in the log');
    const notice = stderr.split('\n').find((l) => l.includes('telegram notice (log_only)')) ?? '';
    expect(notice).toContain(created.strategy_id);
    expect(stderr).not.toContain(BOT_TOKEN);
  }, 240_000);
});
