/**
 * The soak's load and measuring processes, each a child of the coordinator with an IPC channel (so none
 * of them shares an event loop with a service or with another probe):
 *
 * - `ws`: the WebSocket clients (200 by default), each signed in as its user (session cookie) and
 *   subscribed to a few instruments' 1m candles and prices and to its user's strategy metrics and
 *   events; latency = receive time − publish time of every data message (`samples.ts publishedAt`).
 * - `raw`: the baseline, ONE node-redis client reading the union of the streams the WebSocket clients
 *   subscribe to with an `XREAD BLOCK` loop, same latency rule, same run, same redis-server; each
 *   entry's latency is weighted by the number of clients reading its stream (the clients' mix).
 * - `strategy`: publish → strategy output: reads the candle streams the strategies run on (to learn each
 *   candle's `ingested_at`) and the users' metrics streams; a metric entry's Redis time (its ID) minus the
 *   `ingested_at` of its candle is the time from the feed publishing a candle to a strategy having
 *   consumed it, stepped and written its output.
 *
 * Protocol: parent → child `start` with the config; child → parent `ready`; parent → child `measure` (count from now on), `window` (answered
 * with the stats since the previous window), `finish` (answered with `final`, then the child exits).
 * A child exits by itself when the coordinator goes away (IPC disconnect).
 */
import { createClient } from 'redis';
import WebSocket from 'ws';
import { compareStreamIds } from '../../src/bus/stream-id.js';
import { sendToParent, type ChildFailed } from '../../src/bench/child-channel.js';
import { latestIds, readLoop } from '../../src/bench/raw-reader.js';
import { LatencySamples } from '../../src/bench/latency-samples.js';
import { idMs, latencySummary, publishedAt, type LatencySummary } from './samples.js';

export type ProbeConfig =
  | {
      readonly role: 'ws';
      /** `ws://host:port/api/v1/live/ws`. */
      readonly url: string;
      readonly clients: readonly {
        readonly cookie: string;
        /** Subscribe messages, as the protocol takes them. */
        readonly subscribe: readonly Record<string, string>[];
      }[];
    }
  | {
      readonly role: 'raw';
      readonly redisUrl: string;
      readonly streams: readonly string[];
      /**
       * Per stream, how many WebSocket clients read it: each entry's latency counts that many times, so
       * the baseline's distribution has the clients' mix of streams (one user stream feeds 20 clients,
       * one instrument's candles 5) and the percentiles compare like with like.
       */
      readonly weights: readonly number[];
    }
  | {
      readonly role: 'strategy';
      readonly redisUrl: string;
      readonly candleStreams: readonly string[];
      readonly metricStreams: readonly string[];
    };

export interface WindowStats {
  /** Data messages (entries) received since the previous window, counted or not. */
  readonly received: number;
  readonly latency: LatencySummary;
  readonly disconnects: number;
}

export interface FinalStats {
  /** Everything received since start (warm-up included). */
  readonly received_total: number;
  /** Received since `measure`. */
  readonly received_measured: number;
  readonly latency: LatencySummary;
  /** Per channel (ws/raw: candles, prices, metrics, events; strategy: metrics). */
  readonly by_channel: Readonly<Record<string, LatencySummary>>;
  /**
   * Entries with Redis-assigned IDs only (prices, metrics, events): Redis's clock at the XADD to the
   * receiver, i.e. delivery alone, without the feed's own outbox wait that candles' `ingested_at` includes.
   */
  readonly redis_time: LatencySummary;
  /** Entries seen with an ID not above the previous one of the same (receiver, stream). */
  readonly out_of_order_or_duplicate: number;
  readonly disconnects: number;
  readonly close_codes: readonly number[];
  readonly server_errors: number;
  readonly first_server_error: string | null;
  /** ws: messages per client since `measure`, least and most. */
  readonly per_client_min?: number;
  readonly per_client_max?: number;
  /** strategy: metric entries whose candle was not seen (e.g. read before the probe started). */
  readonly unmatched?: number;
  readonly cpu_s: number;
}

export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'window'; readonly stats: WindowStats }
  | { readonly type: 'final'; readonly stats: FinalStats }
  | ChildFailed;

export type ParentMessage =
  | { readonly type: 'start'; readonly config: ProbeConfig }
  | { readonly type: 'measure' }
  | { readonly type: 'window' }
  | { readonly type: 'finish' };

/** Send and wait until it is written (the last message goes out before the disconnect). */
const send = (m: ChildMessage): Promise<void> => sendToParent(m);

function channelOf(stream: string): string {
  if (stream.startsWith('md.candles.')) return 'candles';
  if (stream.startsWith('md.prices.')) return 'prices';
  if (stream.startsWith('strategy.metrics.')) return 'metrics';
  if (stream.startsWith('strategy.events.')) return 'events';
  return 'other';
}

/** What every probe counts. */
class Tally {
  measuring = false;
  receivedTotal = 0;
  receivedMeasured = 0;
  windowReceived = 0;
  disorder = 0;
  disconnects = 0;
  windowDisconnects = 0;
  readonly closeCodes: number[] = [];
  serverErrors = 0;
  firstServerError: string | null = null;
  readonly all = new LatencySamples();
  readonly window = new LatencySamples();
  readonly byChannel = new Map<string, LatencySamples>();
  readonly redisTime = new LatencySamples();
  private readonly cpu0 = process.cpuUsage();

  /** One data message: counted always, its latency only while measuring. */
  take(channel: string, latencyMs: number, weight = 1): void {
    this.receivedTotal++;
    this.windowReceived++;
    if (!this.measuring) return;
    this.receivedMeasured++;
    if (!Number.isFinite(latencyMs)) return;
    let s = this.byChannel.get(channel);
    if (!s) this.byChannel.set(channel, (s = new LatencySamples()));
    for (let i = 0; i < weight; i++) {
      this.all.push(latencyMs);
      this.window.push(latencyMs);
      s.push(latencyMs);
      if (channel !== 'candles') this.redisTime.push(latencyMs);
    }
  }

  disconnected(code: number): void {
    this.disconnects++;
    this.windowDisconnects++;
    if (this.closeCodes.length < 20) this.closeCodes.push(code);
  }

  windowStats(): WindowStats {
    const stats = {
      received: this.windowReceived,
      latency: latencySummary(this.window),
      disconnects: this.windowDisconnects,
    };
    this.windowReceived = 0;
    this.windowDisconnects = 0;
    this.window.clear();
    return stats;
  }

  final(extra: Partial<FinalStats> = {}): FinalStats {
    const cpu = process.cpuUsage(this.cpu0);
    return {
      received_total: this.receivedTotal,
      received_measured: this.receivedMeasured,
      latency: latencySummary(this.all),
      by_channel: Object.fromEntries([...this.byChannel].map(([k, s]) => [k, latencySummary(s)])),
      redis_time: latencySummary(this.redisTime),
      out_of_order_or_duplicate: this.disorder,
      disconnects: this.disconnects,
      close_codes: this.closeCodes,
      server_errors: this.serverErrors,
      first_server_error: this.firstServerError,
      cpu_s: Math.round((cpu.user + cpu.system) / 1000) / 1000,
      ...extra,
    };
  }
}

/** Answer the parent until `finish`; `close` runs before the final stats are sent. */
async function serve(tally: Tally, close: () => Promise<Partial<FinalStats>>): Promise<void> {
  await new Promise<void>((resolve) => {
    process.on('message', (m: ParentMessage) => {
      if (m.type === 'measure') tally.measuring = true;
      else if (m.type === 'window') void send({ type: 'window', stats: tally.windowStats() });
      else if (m.type === 'finish') resolve();
    });
  });
  const extra = await close();
  await send({ type: 'final', stats: tally.final(extra) });
}

// ---------------------------------------------------------------------------------------------------

interface Socket {
  readonly ws: WebSocket;
  count: number;
  readonly lastIds: Map<string, string>;
}

async function wsProbe(cfg: Extract<ProbeConfig, { role: 'ws' }>): Promise<void> {
  const tally = new Tally();
  const sockets: Socket[] = [];
  let closing = false;
  const open = async (c: (typeof cfg.clients)[number]): Promise<void> => {
    const ws = new WebSocket(cfg.url, { perMessageDeflate: false, headers: { cookie: c.cookie } });
    const sock: Socket = { ws, count: 0, lastIds: new Map() };
    sockets.push(sock);
    let subscribed = 0;
    let onSubscribed: (() => void) | undefined;
    let onFailed: ((e: Error) => void) | undefined;
    ws.on('message', (data: Buffer) => {
      const at = Date.now();
      const m = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      if (m['op'] === undefined && typeof m['stream'] === 'string' && typeof m['id'] === 'string') {
        const fields = (m['fields'] ?? {}) as Record<string, string>;
        const last = sock.lastIds.get(m['stream']);
        if (last !== undefined && compareStreamIds(m['id'], last) <= 0) tally.disorder++;
        sock.lastIds.set(m['stream'], m['id']);
        if (tally.measuring) sock.count++;
        tally.take(channelOf(m['stream']), at - publishedAt(m['stream'], m['id'], fields));
      } else if (m['op'] === 'subscribed') {
        if (++subscribed === c.subscribe.length) onSubscribed?.();
      } else if (m['op'] === 'error') {
        tally.serverErrors++;
        tally.firstServerError ??= JSON.stringify(m);
        onFailed?.(new Error(`server error while subscribing: ${JSON.stringify(m)}`));
      }
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    ws.on('error', () => undefined); // a close follows; counted there
    ws.on('close', (code) => {
      if (!closing) tally.disconnected(code);
    });
    const done = new Promise<void>((resolve, reject) => {
      onSubscribed = resolve;
      onFailed = reject;
    });
    for (const s of c.subscribe) ws.send(JSON.stringify({ op: 'subscribe', ...s }));
    await done;
    onFailed = undefined;
  };
  for (let i = 0; i < cfg.clients.length; i += 20)
    await Promise.all(cfg.clients.slice(i, i + 20).map((c) => open(c)));
  await send({ type: 'ready' });
  await serve(tally, async () => {
    closing = true;
    const counts = sockets.map((s) => s.count);
    for (const s of sockets) s.ws.terminate();
    await Promise.resolve();
    return { per_client_min: Math.min(...counts), per_client_max: Math.max(...counts) };
  });
}

async function rawProbe(cfg: Extract<ProbeConfig, { role: 'raw' }>): Promise<void> {
  const tally = new Tally();
  const client = createClient({ url: cfg.redisUrl });
  client.on('error', () => undefined);
  await client.connect();
  let running = true;
  const weights = new Map(cfg.streams.map((s, i) => [s, cfg.weights[i] ?? 1]));
  const loop = readLoop(client, cfg.streams, await latestIds(client, cfg.streams), {
    running: () => running,
    onBatch: (stream, entries, at) => {
      const channel = channelOf(stream);
      const w = weights.get(stream) ?? 1;
      for (const e of entries) tally.take(channel, at - publishedAt(stream, e.id, e.fields), w);
    },
  });
  await send({ type: 'ready' });
  await serve(tally, async () => {
    running = false;
    await loop.catch(() => undefined);
    client.destroy();
    return {};
  });
}

async function strategyProbe(cfg: Extract<ProbeConfig, { role: 'strategy' }>): Promise<void> {
  const tally = new Tally();
  const client = createClient({ url: cfg.redisUrl });
  client.on('error', () => undefined);
  await client.connect();
  /** `<instrument>|<ts_open ISO>` -> ingested_at epoch ms, of candles not yet matched by all their runs. */
  const ingested = new Map<string, number>();
  let unmatched = 0;
  let running = true;
  const streams = [...cfg.candleStreams, ...cfg.metricStreams];
  const loop = readLoop(client, streams, await latestIds(client, streams), {
    running: () => running,
    onBatch: (stream, entries) => {
      if (stream.startsWith('md.candles.')) {
        for (const e of entries) {
          const key = `${e.fields['instrument_key'] ?? ''}|${e.fields['ts_open'] ?? ''}`;
          ingested.set(key, Date.parse(e.fields['ingested_at'] ?? ''));
        }
        // Bounded: a candle whose outputs never come (a strategy still warming up) is forgotten later.
        if (ingested.size > 20_000) for (const k of [...ingested.keys()].slice(0, 10_000)) ingested.delete(k);
        return;
      }
      for (const e of entries) {
        let p: Record<string, unknown>;
        try {
          p = JSON.parse(e.fields['payload'] ?? '') as Record<string, unknown>;
        } catch {
          continue;
        }
        const key = `${String(p['instrument_key'])}|${String(p['ts_open'])}`;
        const at = ingested.get(key);
        if (at === undefined) {
          if (tally.measuring) unmatched++;
          continue;
        }
        tally.take('metrics', idMs(e.id) - at);
      }
    },
  });
  await send({ type: 'ready' });
  await serve(tally, async () => {
    running = false;
    await loop.catch(() => undefined);
    client.destroy();
    return { unmatched };
  });
}

async function main(): Promise<void> {
  process.on('disconnect', () => process.exit(0)); // the coordinator went away
  // The config comes over IPC: 200 clients' cookies and subscriptions are over argv's 128 KiB limit.
  const cfg = await new Promise<ProbeConfig>((resolve) => {
    const on = (m: ParentMessage): void => {
      if (m.type !== 'start') return;
      process.off('message', on);
      resolve(m.config);
    };
    process.on('message', on);
  });
  try {
    if (cfg.role === 'ws') await wsProbe(cfg);
    else if (cfg.role === 'raw') await rawProbe(cfg);
    else await strategyProbe(cfg);
  } catch (err) {
    await send({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
  }
  process.disconnect();
}

await main();
