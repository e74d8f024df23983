/**
 * Live relay benchmark: delivery latency from XADD to a WebSocket client's `message` event with many
 * clients on one API server, against the floor of ONE raw node-redis client reading the same streams with
 * an XREAD BLOCK loop, measured in the same run on the same private redis-server.
 *
 *   node --import tsx bench/ws-bench.ts [--clients 200] [--seconds 20] [--rate 200] [--json]
 *
 * Processes (all on loopback): this one runs the redis-server (its own process), the API server (PGlite in
 * memory, development sign-in) and coordinates; a publisher child XADDs at a steady rate, alternating a
 * 1m candle stream and a price stream of one instrument, each entry carrying `sent_at` (epoch ms with
 * sub-ms precision) plus a sequence number; a receiver child holds either all the WebSocket clients
 * (each subscribed to both streams) or the one raw XREAD client. So neither the clients nor the publisher
 * take the server's event loop. Each phase publishes `--warmup` seconds of entries that are not counted,
 * then `--seconds` seconds that are. Phases: raw first, then WebSocket.
 *
 * Prints one JSON object (with --json only that on stdout; progress goes to stderr).
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import WebSocket from 'ws';
import { apiSettingsFromEnv } from '../src/api/config.js';
import { startApi, type ApiService } from '../src/app/start-api.js';
import { streams } from '../src/contracts/catalog.js';
import { RedisServer } from '../src/bus/redis-server.js';
import { openRelationalDb } from '../src/app/open-db.js';
import { silentLogger } from '../src/util/log.js';
import { ChildChannel, sendToParent, type ChildFailed } from '../src/bench/child-channel.js';
import { latestIds, readLoop } from '../src/bench/raw-reader.js';
import { LatencySamples } from '../src/bench/latency-samples.js';
import { FeedStatus, statusFields } from '../src/marketdata/feed-status.js';

const INSTRUMENT = 'sim:spot:BENCHUSDT';
const CANDLES = streams.candles('1m', INSTRUMENT);
const PRICES = streams.prices(INSTRUMENT);
const STREAMS = [CANDLES, PRICES] as const;

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    child: { type: 'string' },
  },
});

const epochNow = (): number => performance.timeOrigin + performance.now();
const say = (s: string): void => void process.stderr.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (v: number, d = 3): number => (Number.isFinite(v) ? Number(v.toFixed(d)) : Number.NaN);

// ---------------------------------------------------------------------------------------------------
// Messages between the coordinator and its children (IPC).

type ChildConfig =
  | {
      readonly role: 'publisher';
      readonly redisUrl: string;
      readonly rate: number;
      readonly seconds: number;
      readonly warmup: number;
    }
  | { readonly role: 'raw'; readonly redisUrl: string }
  | { readonly role: 'ws'; readonly wsUrl: string; readonly clients: number; readonly cookie: string };

interface LatencyStats {
  readonly deliveries: number;
  readonly per_receiver_min: number;
  readonly per_receiver_max: number;
  readonly out_of_order_or_duplicate: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly p999_ms: number;
  readonly max_ms: number;
  readonly mean_ms: number;
  readonly cpu_ms: number;
}

interface PublishResult {
  readonly sent: number;
  readonly warm: number;
  readonly errors: number;
  readonly achieved_rate_per_s: number;
}

type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'clock'; readonly now: number }
  | { readonly type: 'published'; readonly result: PublishResult }
  | { readonly type: 'stats'; readonly stats: LatencyStats }
  | ChildFailed;

type ParentMessage =
  | { readonly type: 'clock' }
  | { readonly type: 'go' }
  | { readonly type: 'stop'; readonly expectedPerReceiver: number; readonly drainMs: number };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function send(m: ChildMessage): void {
  void sendToParent(m);
}

/** Send and wait until it is written (before the channel closes). */
function sendNow(m: ChildMessage): Promise<void> {
  return sendToParent(m);
}

// ---------------------------------------------------------------------------------------------------
// Receivers: latency samples of counted entries, order checks per (receiver, stream).

/** What all receivers of one child saw: latencies (ms) of counted entries and order violations. */
class Deliveries {
  // Starts at 64 Ki samples: a phase counts rate × seconds × clients deliveries (800,000 by default).
  readonly samples = new LatencySamples({ initialCapacity: 1 << 16 });
  disorder = 0;

  stats(perReceiver: readonly number[], cpu: NodeJS.CpuUsage): LatencyStats {
    const s = this.samples.summary();
    return {
      deliveries: s.count,
      per_receiver_min: Math.min(...perReceiver),
      per_receiver_max: Math.max(...perReceiver),
      out_of_order_or_duplicate: this.disorder,
      p50_ms: round(s.p50),
      p90_ms: round(s.p90),
      p99_ms: round(s.p99),
      p999_ms: round(s.p999),
      max_ms: round(s.max),
      mean_ms: round(s.mean),
      cpu_ms: round((cpu.user + cpu.system) / 1000, 0),
    };
  }
}

/** One receiver's view: counts counted entries and checks that sequence numbers rise per stream. */
class Receiver {
  count = 0;
  private readonly lastSeq = new Map<string, number>();

  constructor(private readonly seen: Deliveries) {}

  take(stream: string, fields: Readonly<Record<string, string>>, receivedAt: number): void {
    const seq = Number(fields['seq']);
    const prev = this.lastSeq.get(stream);
    if (prev !== undefined && seq <= prev) this.seen.disorder++;
    this.lastSeq.set(stream, seq);
    if (fields['warm'] !== '0') return;
    this.count++;
    this.seen.samples.push(receivedAt - Number(fields['sent_at']));
  }
}

async function runReceiver(
  receivers: readonly Receiver[],
  seen: Deliveries,
  close: () => Promise<void>,
  cpu0: NodeJS.CpuUsage,
): Promise<void> {
  const stop = await new Promise<Extract<ParentMessage, { type: 'stop' }>>((resolve) => {
    process.on('message', (m: ParentMessage) => {
      if (m.type === 'stop') resolve(m);
    });
  });
  const deadline = Date.now() + stop.drainMs;
  while (Date.now() < deadline && receivers.some((r) => r.count < stop.expectedPerReceiver)) await sleep(20);
  await sleep(200); // anything extra (a duplicate) shows now
  const stats = seen.stats(
    receivers.map((r) => r.count),
    process.cpuUsage(cpu0),
  );
  await sendNow({ type: 'stats', stats });
  await close();
}

async function rawChild(cfg: Extract<ChildConfig, { role: 'raw' }>): Promise<void> {
  const client = createClient({ url: cfg.redisUrl });
  await client.connect();
  const cursors = await latestIds(client, STREAMS);
  const seen = new Deliveries();
  const receiver = new Receiver(seen);
  let running = true;
  const loop = readLoop(client, STREAMS, cursors, {
    running: () => running,
    onBatch: (stream, entries, receivedAt) => {
      for (const e of entries) receiver.take(stream, e.fields, receivedAt);
    },
    now: epochNow,
  });
  answerClock();
  send({ type: 'ready' });
  await runReceiver(
    [receiver],
    seen,
    async () => {
      running = false;
      await loop;
      client.destroy();
    },
    process.cpuUsage(),
  );
}

async function wsChild(cfg: Extract<ChildConfig, { role: 'ws' }>): Promise<void> {
  const seen = new Deliveries();
  const sockets: WebSocket[] = [];
  const receivers: Receiver[] = [];
  const url = `${cfg.wsUrl}/api/v1/live/ws`;
  const openOne = async (): Promise<void> => {
    const receiver = new Receiver(seen);
    const ws = new WebSocket(url, { perMessageDeflate: false, headers: { cookie: cfg.cookie } });
    sockets.push(ws);
    receivers.push(receiver);
    let subscribed = 0;
    let onSubscribed: (() => void) | undefined;
    ws.on('message', (data: Buffer) => {
      const receivedAt = epochNow();
      const m: unknown = JSON.parse(data.toString('utf8'));
      if (!isObject(m)) return;
      if (m['op'] === undefined && typeof m['stream'] === 'string' && isObject(m['fields'])) {
        receiver.take(m['stream'], m['fields'] as Record<string, string>, receivedAt);
      } else if (m['op'] === 'subscribed') {
        subscribed++;
        if (subscribed === STREAMS.length) onSubscribed?.();
      } else if (m['op'] === 'error') {
        send({ type: 'failed', error: `server error: ${JSON.stringify(m)}` });
      }
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    ws.on('close', (code) => {
      if (!closing) send({ type: 'failed', error: `socket closed by the server: ${code}` });
    });
    const done = new Promise<void>((resolve) => (onSubscribed = resolve));
    ws.send(JSON.stringify({ op: 'subscribe', channel: 'candles', instrument: INSTRUMENT, timeframe: '1m' }));
    ws.send(JSON.stringify({ op: 'subscribe', channel: 'prices', instrument: INSTRUMENT }));
    await done;
  };
  let closing = false;
  for (let i = 0; i < cfg.clients; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, cfg.clients - i) }, () => openOne()));
  }
  answerClock();
  send({ type: 'ready' });
  await runReceiver(
    receivers,
    seen,
    async () => {
      closing = true;
      for (const ws of sockets) ws.terminate();
      await Promise.resolve();
    },
    process.cpuUsage(),
  );
}

function answerClock(): void {
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'clock') send({ type: 'clock', now: epochNow() });
  });
}

function candleFields(seq: number): Record<string, string> {
  const ms = 1_700_000_000_000 + seq * 60_000;
  return {
    schema_version: '1',
    market_id: '1',
    symbol: 'BENCHUSDT',
    instrument_key: INSTRUMENT,
    ts_open: new Date(ms).toISOString(),
    ts_close: new Date(ms + 60_000).toISOString(),
    open: '100.5',
    high: '101.25',
    low: '99.75',
    close: String(100 + (seq % 7)),
    volume_base: '12.5',
    volume_quote: '1250.75',
    source: 'bench',
    ingested_at: new Date(ms + 61_000).toISOString(),
    ingest_id: 'ws-bench',
  };
}

function priceFields(seq: number): Record<string, string> {
  return {
    schema_version: '1',
    symbol: 'BENCHUSDT',
    instrument_key: INSTRUMENT,
    bid: String(100 + (seq % 13)),
    ask: String(100.5 + (seq % 13)),
    mid: String(100.25 + (seq % 13)),
    tick_ts: String(seq),
    snap_ts: String(seq),
  };
}

async function publisherChild(cfg: Extract<ChildConfig, { role: 'publisher' }>): Promise<void> {
  const client = createClient({ url: cfg.redisUrl });
  await client.connect();
  answerClock();
  send({ type: 'ready' });
  await new Promise<void>((resolve) => {
    process.on('message', (m: ParentMessage) => {
      if (m.type === 'go') resolve();
    });
  });
  const warmCount = Math.round(cfg.warmup * cfg.rate);
  const total = warmCount + Math.round(cfg.seconds * cfg.rate);
  const pending: Promise<unknown>[] = [];
  let errors = 0;
  const t0 = performance.now();
  let measuredStart = Number.NaN;
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * cfg.rate) + 1);
    while (sent < due) {
      const seq = sent++;
      const stream = STREAMS[seq % 2] ?? CANDLES;
      const warm = seq < warmCount;
      if (seq === warmCount) measuredStart = performance.now();
      const base = stream === CANDLES ? candleFields(seq) : priceFields(seq);
      const fields = { ...base, seq: String(seq), warm: warm ? '1' : '0', sent_at: String(epochNow()) };
      pending.push(
        client
          .xAdd(stream, '*', fields, {
            TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 20_000 },
          })
          .catch(() => errors++),
      );
      if (pending.length > 1000) await Promise.all(pending.splice(0));
    }
    const next = t0 + ((sent + 0) / cfg.rate) * 1000;
    await sleep(Math.max(0, next - performance.now()));
  }
  await Promise.all(pending);
  const measured = total - warmCount;
  const elapsed = (performance.now() - measuredStart) / 1000;
  await sendNow({
    type: 'published',
    result: { sent: measured, warm: warmCount, errors, achieved_rate_per_s: round(measured / elapsed, 1) },
  });
  client.destroy();
}

// ---------------------------------------------------------------------------------------------------
// The coordinator.

class Child extends ChildChannel<ParentMessage, ChildMessage> {
  constructor(cfg: ChildConfig) {
    super({
      script: fileURLToPath(import.meta.url),
      args: ['--child', JSON.stringify(cfg)],
      name: `${cfg.role} child`,
    });
  }

  /** This child's clock minus ours, from the IPC round trip with the smallest delay. */
  async clockOffset(): Promise<number> {
    let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
    for (let i = 0; i < 20; i++) {
      const t1 = epochNow();
      this.post({ type: 'clock' });
      const { now } = await this.next('clock', 5000);
      const t2 = epochNow();
      if (t2 - t1 < best.rtt) best = { rtt: t2 - t1, offset: now - (t1 + t2) / 2 };
    }
    return best.offset;
  }
}

interface PhaseResult {
  readonly receivers: number;
  readonly published: PublishResult;
  readonly expected: number;
  readonly stats: LatencyStats;
  /** Receiver clock minus publisher clock, estimated over IPC (not applied). */
  readonly clock_offset_ms: number;
  readonly server_cpu_ms?: number;
}

const live = new Set<Child>();

async function phase(
  receiverCfg: ChildConfig,
  receivers: number,
  redisUrl: string,
  rate: number,
  seconds: number,
  warmup: number,
  measureCpu: boolean,
): Promise<PhaseResult> {
  const receiver = new Child(receiverCfg);
  live.add(receiver);
  const publisher = new Child({ role: 'publisher', redisUrl, rate, seconds, warmup });
  live.add(publisher);
  try {
    await receiver.next('ready', 120_000);
    await publisher.next('ready', 30_000);
    const offset = (await receiver.clockOffset()) - (await publisher.clockOffset());
    const cpu0 = process.cpuUsage();
    publisher.post({ type: 'go' });
    const { result } = await publisher.next('published', (seconds + warmup) * 1000 + 60_000);
    const cpu = process.cpuUsage(cpu0);
    receiver.post({ type: 'stop', expectedPerReceiver: result.sent, drainMs: 10_000 });
    const { stats } = await receiver.next('stats', 60_000);
    if (receiver.failure) throw new Error(receiver.failure);
    return {
      receivers,
      published: result,
      expected: result.sent * receivers,
      stats,
      clock_offset_ms: round(offset),
      ...(measureCpu ? { server_cpu_ms: round((cpu.user + cpu.system) / 1000, 0) } : {}),
    };
  } finally {
    for (const c of [receiver, publisher]) {
      await c.exit(5000);
      live.delete(c);
    }
  }
}

async function main(): Promise<void> {
  const clients = Number(values.clients);
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const warmup = Number(values.warmup);
  for (const [name, v] of Object.entries({ clients, seconds, rate, warmup }))
    if (!Number.isFinite(v) || v < 0 || (name !== 'warmup' && v <= 0))
      throw new Error(`--${name}: expected a positive number`);
  // Bounded: whatever happens, stop after twice the planned time plus set-up room.
  const watchdog = setTimeout(
    () => {
      say('ws-bench: overall time limit reached, stopping');
      for (const c of live) c.kill();
      process.exit(2);
    },
    (2 * (seconds + warmup) + 240) * 1000,
  );
  watchdog.unref();

  const redisServer = await RedisServer.start({ persistence: 'none' });
  const db = openRelationalDb({}, silentLogger); // PGlite in memory
  let api: ApiService | undefined;
  try {
    await db.migrate();
    api = await startApi({
      redis: { url: redisServer.url },
      db: db.sql,
      log: silentLogger,
      host: '127.0.0.1',
      port: 0,
      publicDir: null,
      // Development sign-in: every client shares the session of the one-time link (the local user).
      settings: apiSettingsFromEnv({ SESSION_SECRET: 'ws-bench-session-secret', MARKETBUS_DEV_LOGIN: '1' }),
      live: { maxClientsPerUser: clients + 10, blockMs: 5000 },
    });
    if (api.devLoginUrl === null) throw new Error('the bench needs development sign-in');
    const signIn = await fetch(api.devLoginUrl, { redirect: 'manual' });
    const cookie = signIn.headers.getSetCookie()[0]?.split(';')[0];
    if (signIn.status !== 303 || cookie === undefined)
      throw new Error(`development sign-in failed: ${signIn.status}`);
    say(
      `ws-bench: redis ${redisServer.url}, api ${api.url}; ${rate} entries/s for ${seconds} s (+${warmup} s warm-up)`,
    );

    say('ws-bench: raw baseline (one node-redis XREAD BLOCK client)...');
    const raw = await phase(
      { role: 'raw', redisUrl: redisServer.url },
      1,
      redisServer.url,
      rate,
      seconds,
      warmup,
      false,
    );
    say(`  p50 ${raw.stats.p50_ms} ms, p99 ${raw.stats.p99_ms} ms, ${raw.stats.deliveries}/${raw.expected}`);

    // The relay subscribes only to instruments a feed's status lists: announce the bench's one.
    const announcer = createClient({ url: redisServer.url });
    await announcer.connect();
    await announcer.xAdd(
      streams.feedStatus('bench'),
      '*',
      statusFields(new FeedStatus('bench', [INSTRUMENT], 30_000).snapshot(), {}),
    );
    await announcer.close();
    say(`ws-bench: ${clients} WebSocket clients...`);
    const ws = await phase(
      { role: 'ws', wsUrl: api.url.replace(/^http/, 'ws'), clients, cookie },
      clients,
      redisServer.url,
      rate,
      seconds,
      warmup,
      true,
    );
    say(`  p50 ${ws.stats.p50_ms} ms, p99 ${ws.stats.p99_ms} ms, ${ws.stats.deliveries}/${ws.expected}`);

    const report = {
      benchmark: 'ws-live-relay',
      layout:
        'api server + redis-server in/under the coordinator process; publisher and receivers each in their own child process',
      node: process.version,
      clients,
      seconds,
      warmup_seconds: warmup,
      rate_per_s: rate,
      streams: [...STREAMS],
      ws: {
        delivered: ws.stats.deliveries,
        expected: ws.expected,
        complete: ws.stats.deliveries === ws.expected && ws.stats.out_of_order_or_duplicate === 0,
        ...ws.stats,
        published: ws.published,
        server_cpu_ms: ws.server_cpu_ms,
        server_cpu_us_per_delivery: round(
          ((ws.server_cpu_ms ?? 0) * 1000) / Math.max(1, ws.stats.deliveries),
        ),
        clock_offset_ms: ws.clock_offset_ms,
      },
      raw: {
        delivered: raw.stats.deliveries,
        expected: raw.expected,
        complete: raw.stats.deliveries === raw.expected && raw.stats.out_of_order_or_duplicate === 0,
        ...raw.stats,
        published: raw.published,
        clock_offset_ms: raw.clock_offset_ms,
      },
      ratio_p50: round(ws.stats.p50_ms / raw.stats.p50_ms),
      ratio_p99: round(ws.stats.p99_ms / raw.stats.p99_ms),
    };
    process.stdout.write(`${JSON.stringify(report, null, values.json ? undefined : 2)}\n`);
  } finally {
    await api?.close();
    await db.close();
    await redisServer.dispose();
    clearTimeout(watchdog);
  }
}

async function child(json: string): Promise<void> {
  process.on('disconnect', () => process.exit()); // the coordinator went away
  const cfg = JSON.parse(json) as ChildConfig;
  try {
    if (cfg.role === 'publisher') await publisherChild(cfg);
    else if (cfg.role === 'raw') await rawChild(cfg);
    else await wsChild(cfg);
    process.disconnect();
  } catch (err) {
    process.exitCode = 1;
    await sendNow({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
    process.disconnect();
  }
}

if (values.child !== undefined) {
  await child(values.child);
} else {
  await main().catch((err: unknown) => {
    say(`ws-bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    for (const c of live) c.kill();
    process.exitCode = 1;
  });
}
