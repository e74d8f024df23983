/**
 * The command layer against a real Redis: request/response across processes with the responder
 * SIGKILLed mid-request (reclaimed by the other responder, answered exactly once) and after replying
 * but before its ack (not run again, not answered again); a request to a service that is down times
 * out with RequestTimeoutError and is not run when the service comes up; malformed commands are
 * dead-lettered with the reason while valid ones are answered; the strategy service on this layer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareStreamIds } from '../../src/bus/stream-id.js';
import { z } from 'zod';
import { streams } from '../../src/contracts/catalog.js';
import { makeEnvelope } from '../../src/bus/codec.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { listDeadLetters } from '../../src/bus/dead-letter.js';
import { openRelationalDb } from '../../src/app/open-db.js';
import { createStrategy } from '../../src/strategy/store.js';
import { CommandFailedError, RequestTimeoutError } from '../../src/commands/errors.js';
import { DecodeError } from '../../src/bus/errors.js';
import { CommandClient, request } from '../../src/commands/client.js';
import { defineService } from '../../src/commands/registry.js';
import { serveCommands } from '../../src/commands/server.js';
import { readServiceStatus } from '../../src/commands/status.js';
import { encodeCommand } from '../../src/commands/wire.js';
import { silentLogger } from '../../src/util/log.js';
import { createCommandConsumer } from '../../src/strategy/commands.js';
import { OutputPublisher } from '../../src/strategy/outputs.js';
import { RunnerMetrics } from '../../src/strategy/runner-metrics.js';
import { connect, startRedis, uniq, waitFor, type TestRedis, redisEnv } from '../helpers/redis.js';
import { echoService } from './jobs-responder.js';

let server: TestRedis;
let redis: RedisClient;
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await startRedis({ persistence: 'none' });
  redis = await connect(server);
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

async function responder(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/integration/jobs-responder.ts'], {
    env: { ...process.env, ...redisEnv(server), CLAIM_MIN_IDLE_MS: '1000', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('ready'), 30_000, 'responder ready');
  return child;
}

async function repliesTo(service: string, commandId: string): Promise<Record<string, string>[]> {
  return (await redis.xRange(streams.serviceResults(service), '-', '+'))
    .map((e) => e.message)
    .filter((f) => f['command_id'] === commandId);
}

async function pendingCount(service: string): Promise<number> {
  const r = await redis.xPending(streams.serviceCommands(service), `${service}.workers`);
  return r.pending;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('command layer', () => {
  it('request/response across two processes: the responder holding the request is SIGKILLed mid-request; the other reclaims it and answers exactly once', async () => {
    const svc = uniq('echo');
    const spec = echoService(svc);
    const procs = new Map<string, ChildProcess>();
    for (const name of ['a', 'b']) procs.set(name, await responder({ SERVICE: svc, INSTANCE: name }));

    const started = Date.now();
    const answer = request(redis, spec, 'echo.say', { text: 'hello', delay_ms: 1500 }, { timeoutMs: 20_000 });
    let commandId = '';
    let holder = '';
    await waitFor(
      async () => {
        const h = await redis.hGetAll(`{${svc}}:runner`);
        [commandId = '', holder = ''] = Object.entries(h)[0] ?? [];
        return commandId !== '';
      },
      10_000,
      'a responder runs the handler',
    );
    const victim = procs.get(holder) as ChildProcess;
    victim.kill('SIGKILL');
    await once(victim, 'exit');

    const result = await answer;
    const survivor = holder === 'a' ? 'b' : 'a';
    expect(result).toEqual({ text: 'hello', instance: survivor, deliveries: 2 });
    expect(Date.now() - started).toBeGreaterThan(1000); // reclaimed after claimMinIdleMs
    await sleep(1500); // a second answer would have arrived by now
    expect(await repliesTo(svc, commandId)).toHaveLength(1);
    expect(await redis.hGet(`{${svc}}:runs`, commandId)).toBe('2'); // started twice, answered once
    await waitFor(async () => (await pendingCount(svc)) === 0, 5000, 'command acked');
  });

  it('a responder that dies after replying but before its ack: the command is reclaimed, neither run nor answered again', async () => {
    const svc = uniq('echo');
    const spec = echoService(svc);
    const a = await responder({ SERVICE: svc, INSTANCE: 'a', DIE_AFTER_REPLY: '1' });
    const client = new CommandClient(redis, { source: 'test' });
    const result = await client.request(spec, 'echo.say', { text: 'once' }, { timeoutMs: 10_000 });
    expect(result.instance).toBe('a');
    if (a.exitCode === null) await once(a, 'exit');
    expect(await pendingCount(svc)).toBe(1); // replied, never acked
    const commandId = Object.keys(await redis.hGetAll(`{${svc}}:runs`))[0] ?? '';

    await responder({ SERVICE: svc, INSTANCE: 'b' });
    await waitFor(async () => (await pendingCount(svc)) === 0, 15_000, 'reclaimed and acked by b');
    expect(await redis.hGet(`{${svc}}:runs`, commandId)).toBe('1');
    expect(await repliesTo(svc, commandId)).toHaveLength(1);
    await waitFor(
      async () =>
        (await readServiceStatus(redis, svc)).find((s) => s.instance === 'b')?.fields['duplicates'] === '1',
      5000,
      'b reports the skipped duplicate',
    );
    // b answers new requests as usual, on the same client
    expect((await client.request(spec, 'echo.say', { text: 'next' })).instance).toBe('b');
    await client.close();
  });

  it('a request to a service that is down times out with RequestTimeoutError; started later, the service does not run it', async () => {
    const svc = uniq('echo');
    const spec = echoService(svc);
    const t0 = Date.now();
    const err = await request(redis, spec, 'echo.say', { text: 'anyone?' }, { timeoutMs: 400 }).catch(
      (e: unknown) => e,
    );
    const waited = Date.now() - t0;
    expect(err).toBeInstanceOf(RequestTimeoutError);
    const timeout = err as RequestTimeoutError;
    expect(timeout.code).toBe('REQUEST_TIMEOUT');
    expect(timeout.service).toBe(svc);
    expect(waited).toBeGreaterThanOrEqual(390);
    expect(waited).toBeLessThan(3000);

    let runs = 0;
    const srv = await serveCommands(
      redis,
      spec,
      { 'echo.say': (p) => ({ text: p.text, instance: 'late', deliveries: ++runs }) },
      {
        consumer: 'late',
        blockMs: 200,
      },
    );
    try {
      await waitFor(
        async () => (await repliesTo(svc, timeout.commandId)).length === 1,
        5000,
        'expired answer',
      );
      const [reply] = await repliesTo(svc, timeout.commandId);
      expect(reply?.['type']).toBe('echo.say.error');
      expect(JSON.parse(reply?.['payload'] ?? '{}')).toMatchObject({ code: 'COMMAND_EXPIRED' });
      expect(runs).toBe(0);
      expect(srv.counts.expired).toBe(1);
    } finally {
      await srv.close();
    }
  });

  it('malformed commands go to the dead-letter stream with the reason; valid ones are answered; the service goes on', async () => {
    const svc = uniq('echo');
    const spec = echoService(svc);
    const commands = streams.serviceCommands(svc);
    const srv = await serveCommands(
      redis,
      spec,
      {
        'echo.say': (p, ctx) => ({
          text: p.text.toUpperCase(),
          instance: ctx.instance,
          deliveries: ctx.deliveries,
        }),
      },
      { consumer: 'one', blockMs: 200, heartbeatMs: 300 },
    );
    const client = new CommandClient(redis, { source: 'test' });
    try {
      const raw = (
        type: string,
        payload: unknown,
        replyTo = streams.serviceResults(svc),
      ): Record<string, string> => encodeCommand(makeEnvelope(type, 'test', payload), replyTo, null);
      const badJson = { ...raw('echo.say', { text: 'x' }), payload: '{not json' };
      const candleStream = streams.candles('1m', 'sim:spot:BTCUSDT');
      const malformed: Record<string, string>[] = [
        { hello: 'world' }, // no envelope at all
        badJson,
        raw('echo.nope', {}), // unknown type
        raw('echo.say', { text: 5 }), // payload fails its schema
        raw('echo.say', { text: 'x' }, candleStream), // callback stream that is not a results stream
      ];
      const valid = ['a', 'b', 'c'].map((t) => client.request(spec, 'echo.say', { text: t }));
      for (const m of malformed) await redis.xAdd(commands, '*', m);
      const more = ['d', 'e'].map((t) => client.request(spec, 'echo.say', { text: t }));
      expect((await Promise.all([...valid, ...more])).map((r) => r.text)).toEqual(['A', 'B', 'C', 'D', 'E']);

      await waitFor(
        async () => (await listDeadLetters(redis, commands)).length === 5,
        5000,
        'five dead letters',
      );
      // Dead letters of one batch may be written in any order: compare them in source-entry order.
      const dead = (await listDeadLetters(redis, commands)).sort((a, b) =>
        compareStreamIds(a.entryId, b.entryId),
      );
      expect(dead.every((d) => d.reason === 'decode' && d.group === `${svc}.workers`)).toBe(true);
      const errors = dead.map((d) => d.error);
      expect(errors[0]).toMatch(/schema_version/);
      expect(errors[1]).toMatch(/not JSON/);
      expect(errors[2]).toMatch(/accepts no command "echo\.nope"/);
      expect(errors[3]).toMatch(/invalid payload of echo\.say: text/);
      expect(errors[4]).toMatch(/reply_to .* is not a results stream/);
      expect(dead[2]?.fields['type']).toBe('echo.nope'); // the original entry travels with its reason
      expect(await redis.exists(candleStream)).toBe(0); // nothing was written where reply_to pointed

      // a requester whose registry knows a command the service does not: a typed answer, no timeout
      const newer = defineService(svc, 'a newer echo', {
        ...spec.commands,
        'echo.nope': {
          description: 'unknown to the service',
          payload: z.strictObject({}),
          result: z.strictObject({}),
        },
      });
      const t0 = Date.now();
      const unknown = await client
        .request(newer, 'echo.nope', {}, { timeoutMs: 5000 })
        .catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(CommandFailedError);
      expect((unknown as CommandFailedError).remoteCode).toBe('COMMAND_UNKNOWN');
      expect(Date.now() - t0).toBeLessThan(2000);
      // an invalid payload never leaves the requester
      await expect(
        client.request(spec, 'echo.say', { text: 7 } as unknown as { text: string }),
      ).rejects.toBeInstanceOf(DecodeError);

      // the service went on and says so on <service>:status
      expect((await client.request(spec, 'echo.say', { text: 'still here' })).text).toBe('STILL HERE');
      const status = await readServiceStatus(redis, svc);
      expect(status[0]).toMatchObject({ instance: 'one', state: 'running', alive: true });
      // The count is taken after the reply is written: the requester may see the reply first.
      await waitFor(() => srv.counts.handled >= 6, 5000, 'the last command counted');
      expect(srv.counts).toMatchObject({ handled: 6, rejected: 3 });
    } finally {
      await client.close();
      await srv.close();
    }
    await waitFor(
      async () => (await readServiceStatus(redis, svc))[0]?.state === 'stopped',
      3000,
      'stopped heartbeat',
    );
  });

  it('the strategy service runs on the command layer: request() gets its answers; heartbeats on strategy:status', async () => {
    const db = openRelationalDb({}, silentLogger);
    await db.migrate();
    const srv = createCommandConsumer({
      redis,
      db: db.sql,
      outputs: new OutputPublisher(redis, new RunnerMetrics(new Registry()), silentLogger),
      log: silentLogger,
      consumer: 'runner-1',
      blockMs: 200,
    });
    await srv.start();
    try {
      expect(await request(redis, 'strategy', 'strategy.run', { strategy_id: 'missing' })).toEqual({
        ok: false,
        strategy_id: 'missing',
        run_id: null,
        status: 'unknown',
        error: 'no such strategy',
      });
      const s = await createStrategy(db.sql, uniq('u'), 'ma', {
        instrument_id: { market_id: 1, symbol: 'BTCUSDT' },
        instrument_key: 'sim:spot:BTCUSDT',
        market_type: 'spot',
        timeframe: '1m',
        indicators: [{ name: 'MA', params: { fast: 3, slow: 8 } }],
        signal_template: 'MA(3,8)',
      });
      const run = await request(redis, 'strategy', 'strategy.run', { strategy_id: s.id, run_id: 'run-1' });
      expect(run).toEqual({ ok: true, strategy_id: s.id, run_id: 'run-1', status: 'running' });
      const stop = await request(redis, 'strategy', 'strategy.stop', { strategy_id: s.id });
      expect(stop).toMatchObject({ ok: true, run_id: 'run-1', status: 'stopped' });
      const status = await readServiceStatus(redis, 'strategy');
      expect(status.find((x) => x.instance === 'runner-1')?.fields['commands']).toBe(
        'strategy.run,strategy.stop',
      );
    } finally {
      await srv.close();
      await db.close();
    }
  });
});
