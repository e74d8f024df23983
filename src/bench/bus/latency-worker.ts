/**
 * The consumer side of `marketbus bench`'s latency measurement, run as a child process so that
 * publisher and consumer do not share an event loop (as in production, where they are different
 * services). Started by `latency-link.ts` with an IPC channel and one JSON argument (`LatencyWorkerConfig`).
 *
 * Protocol (all over IPC, advanced serialization):
 *   worker -> parent  { type: 'ready' }                      groups exist and the read loop runs
 *   parent -> worker  { type: 'clock', seq }                 answered with { type: 'clock', seq, now }
 *   parent -> worker  { type: 'finish', expected, measureFrom, timeoutMs }
 *   worker -> parent  { type: 'result', samples, ... }       latencies (ms) of entries sent at or after measureFrom
 *   worker -> parent  { type: 'failed', error }              then exit 1 (`ChildFailed`)
 *
 * Each entry carries `sent_at` (the publisher's epoch ms, sub-ms precision); the latency of an entry is
 * the time its handler ran minus `sent_at`. The worker exits by itself when the parent goes away.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { sleep } from '../../util/sleep.js';
import { closeRedis, connectRedis, type RedisClient, duplicateRedis } from '../../bus/connection.js';
import { StreamConsumer } from '../../bus/consumer.js';
import { ensureGroup } from '../../bus/groups.js';
import { sendToParent, type ChildFailed } from '../child-channel.js';
import { CATALOG_POLICY } from '../../contracts/catalog.js';

/** What the worker reads: `raw` = an XREADGROUP BLOCK loop on node-redis, `marketbus` = StreamConsumer. */
export type LatencyMode = 'raw' | 'marketbus';

const configSchema = z.object({
  redisUrl: z.string().min(1),
  streams: z.array(z.string().min(1)).min(1),
  group: z.string().min(1),
  mode: z.enum(['raw', 'marketbus']),
});

export type LatencyWorkerConfig = z.infer<typeof configSchema>;

export type ParentMessage =
  | { readonly type: 'clock'; readonly seq: number }
  | {
      readonly type: 'finish';
      readonly expected: number;
      readonly measureFrom: number;
      readonly timeoutMs: number;
    };

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'clock'; readonly seq: number; readonly now: number }
  | {
      readonly type: 'result';
      /** Latencies in ms, in the worker's clock, of the entries sent at or after `measureFrom`. */
      readonly samples: Float64Array;
      /** Entries handled in total (warm-up included). */
      readonly received: number;
      /** Entries without a readable `sent_at`. */
      readonly invalid: number;
      /** Redis errors the read loop recovered from. */
      readonly errors: number;
    }
  | ChildFailed;

/** node-redis's XREADGROUP reply (`[{ name, messages: [{ id, message }] }]`, same in RESP2 and RESP3), for the raw loops. */
export type RawReadReply =
  | readonly {
      readonly name: string;
      readonly messages: readonly {
        readonly id: string;
        readonly message: Readonly<Record<string, string>>;
      }[];
    }[]
  | null;

/** Epoch ms with sub-ms precision. Both processes derive it from the same system clock. */
function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Collects (sent_at, latency) pairs; which of them count is only known when the parent says finish. */
class Recorder {
  private readonly sentAt: number[] = [];
  private readonly latency: number[] = [];
  received = 0;
  invalid = 0;
  errors = 0;

  record(sentAt: string | undefined): void {
    const now = epochNow(); // first, so that parsing does not count as latency
    const sent = Number(sentAt);
    if (sentAt === undefined || !Number.isFinite(sent)) {
      this.invalid++;
      return;
    }
    this.received++;
    this.sentAt.push(sent);
    this.latency.push(now - sent);
  }

  samplesFrom(measureFrom: number): Float64Array {
    const out: number[] = [];
    for (let i = 0; i < this.latency.length; i++) {
      if ((this.sentAt[i] as number) >= measureFrom) out.push(this.latency[i] as number);
    }
    return Float64Array.from(out);
  }
}

/** A running read side; `stop` ends it and waits for its acks. */
interface ReadSide {
  stop(): Promise<void>;
}

const CONSUMER_NAME = 'bench-latency';

/** Plain node-redis: one blocking XREADGROUP over all streams, XACK per stream on the other connection. */
async function startRaw(client: RedisClient, cfg: LatencyWorkerConfig, rec: Recorder): Promise<ReadSide> {
  for (const s of cfg.streams) await ensureGroup(client, s, cfg.group, '$');
  // A blocked read holds its connection, so reads get their own (as StreamConsumer does).
  const reader = duplicateRedis(client);
  reader.on('error', () => undefined); // destroy() at stop raises one; the loop handles real failures
  await reader.connect();
  const keys = cfg.streams.map((key) => ({ key, id: '>' }));
  const acks = new Set<Promise<unknown>>();
  let running = true;
  const ack = (stream: string, ids: string[]): void => {
    const p = client.xAck(stream, cfg.group, ids).catch(() => {
      rec.errors++;
    });
    acks.add(p);
    void p.finally(() => acks.delete(p));
  };
  const loop = (async (): Promise<void> => {
    while (running) {
      let reply: RawReadReply;
      try {
        reply = (await reader.xReadGroup(cfg.group, CONSUMER_NAME, keys, {
          COUNT: 100,
          BLOCK: 1000,
        })) as RawReadReply;
      } catch {
        if (!running) break;
        rec.errors++;
        await sleep(10);
        continue;
      }
      for (const s of reply ?? []) {
        const ids: string[] = [];
        for (const m of s.messages) {
          rec.record(m.message['sent_at']);
          ids.push(m.id);
        }
        // Not awaited: like StreamConsumer, the next read does not wait for the acks.
        if (ids.length > 0) ack(s.name, ids);
      }
    }
  })();
  return {
    async stop() {
      running = false;
      reader.destroy(); // interrupts the blocked read
      await loop;
      await Promise.allSettled([...acks]);
    },
  };
}

/** marketbus's StreamConsumer with a handler that only records the latency. */
async function startMarketbus(
  client: RedisClient,
  cfg: LatencyWorkerConfig,
  rec: Recorder,
): Promise<ReadSide> {
  const consumer = new StreamConsumer(client, {
    policy: CATALOG_POLICY,
    group: cfg.group,
    consumer: CONSUMER_NAME,
    streams: cfg.streams,
    startId: '$',
    handler: (d) => rec.record(d.fields['sent_at']),
  });
  consumer.on('redisError', () => {
    rec.errors++;
  });
  await consumer.start();
  return { stop: () => consumer.close() };
}

function parseParentMessage(v: unknown): ParentMessage | null {
  if (typeof v !== 'object' || v === null || !('type' in v)) return null;
  const m = v as Record<string, unknown>;
  const num = (k: string): number | null => (typeof m[k] === 'number' && Number.isFinite(m[k]) ? m[k] : null);
  if (m['type'] === 'clock') {
    const seq = num('seq');
    return seq === null ? null : { type: 'clock', seq };
  }
  if (m['type'] === 'finish') {
    const expected = num('expected');
    const measureFrom = num('measureFrom');
    const timeoutMs = num('timeoutMs');
    if (expected === null || measureFrom === null || timeoutMs === null) return null;
    return { type: 'finish', expected, measureFrom, timeoutMs };
  }
  return null;
}

function send(msg: WorkerMessage): Promise<void> {
  return sendToParent(msg);
}

/** Wait until `expected` entries were handled (or the timeout passed; the parent sees the shortfall). */
async function waitForEntries(rec: Recorder, expected: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (rec.received + rec.invalid < expected && Date.now() < deadline) await sleep(5);
}

async function main(): Promise<void> {
  // Without a parent there is nobody to report to: leave instead of holding Redis connections open.
  const onParentGone = (): void => process.exit(2);
  process.on('disconnect', onParentGone);
  // A bug guard: only bus-bench.ts forks this file, always with IPC.
  // A bug guard: only the bus bench forks this file, always with IPC.
  if (!process.send) throw new Error('latency-worker must be started with an IPC channel');
  const cfg = configSchema.parse(JSON.parse(process.argv[2] ?? '{}'));
  const rec = new Recorder();
  const client = await connectRedis({ url: cfg.redisUrl, clientName: 'marketbus-bench-latency' });
  const side = cfg.mode === 'raw' ? await startRaw(client, cfg, rec) : await startMarketbus(client, cfg, rec);
  let finishing = false;
  process.on('message', (raw: unknown) => {
    const msg = parseParentMessage(raw);
    if (msg?.type === 'clock') void send({ type: 'clock', seq: msg.seq, now: epochNow() });
    if (msg?.type !== 'finish' || finishing) return;
    finishing = true;
    void (async () => {
      await waitForEntries(rec, msg.expected, msg.timeoutMs);
      await side.stop();
      await closeRedis(client);
      const { received, invalid, errors } = rec;
      await send({ type: 'result', samples: rec.samplesFrom(msg.measureFrom), received, invalid, errors });
      process.off('disconnect', onParentGone);
      process.exit(0);
    })().catch(fail);
  });
  await send({ type: 'ready' });
}

function fail(err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  void send({ type: 'failed', error: message }).finally(() => process.exit(1));
}

// Run only as the entry point: importing this module (e.g. for its types) must not start a worker.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  main().catch(fail);
