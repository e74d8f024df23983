import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { sendCommand } from '../../src/bus/raw-command.js';
import { connectRedis, closeRedis, isReady } from '../../src/bus/connection.js';
import { StreamConsumer } from '../../src/bus/consumer.js';
import { parsePendingSummary } from '../../src/bus/replies.js';
import { connect, startRedis, uniq, waitFor, redisOptions, redisEnv } from '../helpers/redis.js';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

async function startWorker(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/consumer-worker.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('ready'), 20_000, 'worker ready');
  return child;
}

describe('consumer faults', () => {
  it('a consumer SIGKILLed mid-batch loses nothing: the survivor processes all its entries', async () => {
    const server = await startRedis({ persistence: 'none' });
    const redis = await connect(server);
    const group = uniq('g');
    const streams = [1, 2, 3].map(() => `mgmt:${uniq()}:commands`);
    for (const s of streams) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => redis.xAdd(s, '*', { n: String(i) })));
    }
    const base = {
      ...redisEnv(server),
      STREAMS: streams.join(','),
      GROUP: group,
      DELAY_MS: '5',
      CLAIM_MIN_IDLE_MS: '1000',
    };
    // The victim is slow (50 ms an entry), so on a loaded machine it cannot finish all 600 before the
    // survivor has started and it is killed with entries in hand.
    const victim = await startWorker({ ...base, CONSUMER: 'victim', DELAY_MS: '50' });
    await startWorker({ ...base, CONSUMER: 'survivor' });
    const victimPending = async (): Promise<number> => {
      let n = 0;
      for (const s of streams) {
        const summary = parsePendingSummary(await sendCommand(redis, ['XPENDING', s, group]));
        n += summary.consumers.find((c) => c.name === 'victim')?.pending ?? 0;
      }
      return n;
    };
    // Kill it while it holds unacknowledged entries (it reads 20 per stream and takes 50 ms each).
    await waitFor(
      async () =>
        Number((await redis.hGet(`seen:{${group}}`, 'victim')) ?? 0) >= 30 && (await victimPending()) > 0,
      20_000,
      'victim working with entries in hand',
    );
    victim.kill('SIGKILL');
    await once(victim, 'exit');
    expect(await victimPending()).toBeGreaterThan(0); // it died holding entries
    await waitFor(async () => (await redis.sCard(`done:{${group}}`)) === 600, 60_000, 'all 600 processed');
    for (const s of streams) {
      await waitFor(
        async () => parsePendingSummary(await sendCommand(redis, ['XPENDING', s, group])).count === 0,
        10_000,
        'acked',
      );
    }
  });

  for (const persistence of ['aof', 'none'] as const) {
    it(`consumers go on by themselves after Redis restarts (persistence: ${persistence})`, async () => {
      const server = await startRedis({ persistence, extraArgs: ['--appendfsync', 'always'] });
      const producer = await connectRedis({
        ...redisOptions(server),
        reconnectBaseMs: 50,
        reconnectMaxMs: 300,
      });
      const client = await connectRedis({
        ...redisOptions(server),
        reconnectBaseMs: 50,
        reconnectMaxMs: 300,
      });
      const stream = `mgmt:${uniq()}:commands`;
      const seen = new Set<string>();
      let recreated = 0;
      const c = new StreamConsumer(client, {
        group: uniq('g'),
        consumer: 'c1',
        streams: [stream],
        startId: '0',
        blockMs: 200,
        handler: (d) => void seen.add(d.fields['n'] ?? ''),
      });
      c.on('groupRecreated', () => recreated++);
      await c.start();
      for (let i = 0; i < 50; i++) await producer.xAdd(stream, '*', { n: `a${i}` });
      await waitFor(() => seen.size === 50, 10_000, 'first half');

      await server.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      await server.restart();
      await waitFor(() => isReady(producer) && isReady(client), 15_000, 'clients reconnected');
      for (let i = 0; i < 50; i++) await producer.xAdd(stream, '*', { n: `b${i}` });
      await waitFor(() => seen.size === 100, 20_000, 'second half after restart');
      expect(recreated).toBe(persistence === 'none' ? 1 : 0);
      await c.close();
      await closeRedis(producer);
      await closeRedis(client);
    });
  }
});
