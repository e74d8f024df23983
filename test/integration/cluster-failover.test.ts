/**
 * A real local Redis Cluster (three masters, a replica each): the feed publishes per-instrument candle
 * streams spread over all masters while an ordered consumer group reads them; a master is SIGKILLed
 * mid-run and its replica takes over. Every minute is published once and consumed once, in order,
 * with nothing lost (the feed waits for one replica per batch and retries what was not confirmed).
 */
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { streams } from '../../src/contracts/catalog.js';
import { closeRedis, connectRedis, type RedisClient } from '../../src/bus/connection.js';
import { StreamConsumer } from '../../src/bus/consumer.js';
import { sendCommand } from '../../src/bus/raw-command.js';
import { parsePendingSummary } from '../../src/bus/replies.js';
import { nodeGroups } from '../../src/bus/slot-read.js';
import { silentLogger } from '../../src/util/log.js';
import { resolveMarketData, startFeed } from '../../src/app/feed.js';
import { LocalRedisCluster } from '../helpers/redis-cluster.js';
import { waitFor } from '../helpers/redis.js';

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

const KEYS = Array.from({ length: 12 }, (_, i) => `sim:spot:S${i}USDT`);
const STREAMS = KEYS.map((k) => streams.candles('1m', k));

/**
 * The stream lengths, as the test's own probe: while the cluster re-reads its slots after the failover,
 * a read on the old master's connection fails ("Disconnects client"); the probe reads again (at most
 * 10 s). What is under test, the feed and the consumer, gets no such help.
 */
async function lengths(client: RedisClient): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await Promise.all(STREAMS.map((s) => client.xLen(s)));
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('Redis Cluster', () => {
  it('feed and consumer go on through a master killed mid-run: each minute once, in order, none lost', async () => {
    const cluster = await LocalRedisCluster.start();
    cleanup.push(() => cluster.dispose());
    const client = await connectRedis({ ...cluster.options, reconnectBaseMs: 50, reconnectMaxMs: 500 });
    cleanup.push(() => closeRedis(client));
    // The instrument streams land on every master.
    expect(nodeGroups(client, STREAMS)).toHaveLength(3);

    const seen = new Map<string, string[]>(STREAMS.map((s) => [s, []]));
    const consumer = new StreamConsumer(client, {
      group: 'strategy.failover',
      consumer: 'c1',
      streams: STREAMS,
      startId: '0',
      ordered: true,
      claimIntervalMs: 200,
      claimMinIdleMs: 2000,
      handler: (d) => {
        seen.get(d.stream)?.push(d.id);
        return Promise.resolve();
      },
    });
    await consumer.start();
    cleanup.push(() => consumer.close());

    const md = resolveMarketData({}, { source: 'simulated', instruments: KEYS, speed: 300 });
    const feed = await startFeed({
      md,
      redis: {
        ...cluster.options,
        waitReplicas: 1,
        reconnectBaseMs: 50,
        reconnectMaxMs: 500,
        commandTimeoutMs: 1000,
      },
      registry: new Registry(),
      log: silentLogger,
    });
    cleanup.push(() => feed.close());

    await waitFor(async () => (await lengths(client)).every((n) => n >= 5), 30_000, 'five minutes each');
    await cluster.failOverMaster(0);
    const after = await lengths(client);
    await waitFor(
      async () => (await lengths(client)).every((n, i) => n >= (after[i] ?? 0) + 10),
      60_000,
      'ten more minutes each after the failover',
    );
    await feed.close();

    const published = await Promise.all(STREAMS.map((s) => client.xRange(s, '-', '+')));
    await waitFor(
      () => STREAMS.every((s, i) => (seen.get(s)?.length ?? 0) >= (published[i]?.length ?? 0)),
      30_000,
      'the consumer caught up',
    );
    await consumer.close();
    for (const [i, s] of STREAMS.entries()) {
      const ids = (published[i] ?? []).map((e) => e.id);
      const minutes = ids.map((id) => Number(id.split('-')[0]));
      for (let k = 1; k < minutes.length; k++) expect((minutes[k] ?? 0) - (minutes[k - 1] ?? 0)).toBe(60_000);
      expect(seen.get(s)).toEqual(ids); // each once, in order
      const pending = parsePendingSummary(await sendCommand(client, ['XPENDING', s, 'strategy.failover']));
      expect(pending.count).toBe(0);
    }
  }, 120_000);
});
