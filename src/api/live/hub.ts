/**
 * The shared stream reader of the live relay: ONE blocking `XREAD` over every stream that anyone
 * (WebSocket clients, the command-result waiter) listens to, on one dedicated connection, whatever the
 * number of clients. Each stream has a cursor (the last ID delivered); a new stream starts at the ID of
 * its newest entry at the time of its first subscription, so nothing added after that is missed even if
 * the blocked read is rebuilt later.
 *
 * Rebuilds are coalesced: a new stream marks the read in progress stale, and the blocked read is
 * interrupted (`CLIENT UNBLOCK` from the command connection) at most once per `rebuildIntervalMs`, so
 * subscribe/unsubscribe churn cannot keep the reader from reading; a new subscriber waits at most that
 * long for its first live entry, and the other streams continue from their cursors. A stream nobody
 * listens to any more stays in the set until the next read starts (a subscriber coming back meanwhile
 * takes it over without a new tap or a rebuild), then is left out.
 *
 * Delivery is synchronous and in stream order: a listener gets every entry with an ID above the cursor
 * the hub returned when it subscribed, exactly once. Listeners must not block (the WebSocket client
 * queues, bounded). Status entries it reads also update {@link LiveHub.served}.
 */
import { Backoff } from '../../util/backoff.js';
import { withDefaults } from '../../util/defaults.js';
import { sleep } from '../../util/sleep.js';
import { describeStream } from '../../contracts/catalog.js';
import {
  connectInBackground,
  isCluster,
  isReady,
  type RedisClient,
  duplicateRedis,
} from '../../bus/connection.js';
import { IdleWait, readPlan, readRound } from '../../bus/slot-read.js';
import { parseEntries, parseReadReply, type StreamEntry } from '../../bus/replies.js';
import { compareStreamIds } from '../../bus/stream-id.js';
import { ClosedError, errorMessage } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { withTimeout } from '../http-errors.js';
import type { LiveMetrics } from './metrics.js';
import { ServedInstruments, type ServedInstrumentsOptions } from './served.js';
import { sendCommand } from '../../bus/raw-command.js';

export type EntryListener = (stream: string, entries: readonly StreamEntry[]) => void;

export interface Subscription {
  /** Entries with IDs above this one reach the listener; older ones are the subscriber's to read (XRANGE). */
  readonly cursor: string;
  close(): void;
}

interface Tap {
  cursor: string;
  readonly listeners: Set<EntryListener>;
  /** The last listener left: dropped when the next read starts, unless a listener comes back. */
  idle: boolean;
}

export interface LiveHubOptions {
  /** The command connection (cursors, CLIENT UNBLOCK); the hub duplicates it for the blocking read. */
  readonly redis: RedisClient;
  /** Counts the hub's reads and taps. */
  readonly metrics: LiveMetrics;
  /** Where read errors are logged. */
  readonly log: Logger;
  /**
   * XREAD BLOCK, ms.
   * @defaultValue 5000
   */
  readonly blockMs?: number | undefined;
  /**
   * XREAD COUNT (per stream), entries.
   * @defaultValue 500
   */
  readonly count?: number | undefined;
  /**
   * Least time between two interruptions of the blocked read for new streams (the longest a new
   * subscriber waits for its stream to be read), ms.
   * @defaultValue 50
   */
  readonly rebuildIntervalMs?: number | undefined;
  /**
   * How the instruments the feeds serve are cached (`ServedInstruments`).
   * @defaultValue the cache of `SERVED_INSTRUMENTS_DEFAULTS`
   */
  readonly served?: ServedInstrumentsOptions | undefined;
}

/** The defaults of {@link LiveHubOptions}, applied by the `LiveHub` constructor. */
export const LIVE_HUB_DEFAULTS = Object.freeze({
  blockMs: 5000,
  count: 500,
  rebuildIntervalMs: 50,
} satisfies Partial<LiveHubOptions>);

/** The channel name of a stream, for metric labels. */
export function channelOf(stream: string): string {
  switch (describeStream(stream)?.kind) {
    case 'candles':
      return 'candles';
    case 'prices':
      return 'prices';
    case 'feed-status':
      return 'status';
    case 'strategy-events':
      return 'events';
    case 'strategy-metrics':
      return 'metrics';
    default:
      return 'internal';
  }
}

export class LiveHub {
  private readonly taps = new Map<string, Tap>();
  private readonly creating = new Map<string, Promise<Tap>>();
  private readonly blockMs: number;
  private readonly count: number;
  private readonly rebuildIntervalMs: number;
  /** The instruments the feeds serve (their status), for the clients' subscription checks. */
  readonly served: ServedInstruments;
  private lastRebuild = Number.NEGATIVE_INFINITY;
  private rebuildTimer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private reader: RedisClient | undefined;
  private readerId: number | undefined;
  private reading = 0; // generation of the read in progress, 0 when none
  /** The set of streams changed since the read in progress was sent. */
  private dirty = false;
  private generation = 0;
  private idle: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  private lastErrorLog = 0;

  constructor(private readonly o: LiveHubOptions) {
    const d = withDefaults(LIVE_HUB_DEFAULTS, o);
    this.blockMs = d.blockMs;
    this.count = d.count;
    this.rebuildIntervalMs = d.rebuildIntervalMs;
    this.served = new ServedInstruments(o.redis, o.served);
    o.metrics.lengths = () => this.marketLengths();
  }

  /** Open the reading connection (in the background: a Redis that is down delays reads, not start-up). */
  start(): void {
    if (this.reader) return;
    const reader = duplicateRedis(this.o.redis, { commandTimeoutMs: this.blockMs + 10_000 });
    reader.on('error', (err: unknown) =>
      this.o.log.debug({ err: errorMessage(err) }, 'live relay reader connection error'),
    );
    reader.on('ready', () => {
      // A reconnect gets a new client id, which CLIENT UNBLOCK needs.
      reader.clientId().then(
        (id) => {
          this.readerId = id;
          if (this.dirty && this.reading !== 0) this.unblock(); // a change that came before we knew the id
        },
        () => undefined,
      );
    });
    void connectInBackground(reader, this.o.log, this.abort.signal);
    this.reader = reader;
    this.loop = this.readLoop(reader);
  }

  /** Listen to a stream; see {@link Subscription.cursor} for what the listener gets. */
  async subscribe(stream: string, listener: EntryListener): Promise<Subscription> {
    for (;;) {
      if (this.closed) throw new ClosedError('live relay');
      let tap = this.taps.get(stream);
      if (!tap) {
        let pending = this.creating.get(stream);
        if (!pending) {
          pending = this.createTap(stream);
          this.creating.set(stream, pending);
          const done = (): void => {
            this.creating.delete(stream);
          };
          pending.then(done, done);
        }
        tap = await pending;
        // Another subscriber may have come and gone meanwhile, dropping the tap: start over.
        if (this.taps.get(stream) !== tap) continue;
      }
      const t = tap;
      t.listeners.add(listener);
      t.idle = false;
      let open = true;
      return {
        cursor: t.cursor,
        close: () => {
          if (!open) return;
          open = false;
          t.listeners.delete(listener);
          if (t.listeners.size === 0) t.idle = true;
        },
      };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    clearTimeout(this.rebuildTimer);
    this.idle?.();
    this.unblock();
    await Promise.race([this.loop, sleep(500)]);
    const reader = this.reader;
    if (reader?.isOpen) reader.destroy();
    this.taps.clear();
    this.o.metrics.streams.set(0);
  }

  private async createTap(stream: string): Promise<Tap> {
    const raw = await withTimeout(
      sendCommand(this.o.redis, ['XREVRANGE', stream, '+', '-', 'COUNT', '1']),
      5000,
      'XREVRANGE',
    );
    const last = parseEntries(raw, 'XREVRANGE').entries[0]?.id ?? '0-0';
    if (this.closed) throw new ClosedError('live relay');
    const tap: Tap = { cursor: last, listeners: new Set(), idle: false };
    this.taps.set(stream, tap);
    this.o.metrics.streams.set(this.taps.size);
    this.wake();
    return tap;
  }

  /** A stream was added: read it within `rebuildIntervalMs`. */
  private wake(): void {
    if (this.idle) {
      this.idle();
      return;
    }
    if (this.reading === 0) return; // between reads: the next one sees the new set
    this.dirty = true;
    if (this.rebuildTimer) return; // already due
    const wait = Math.max(0, this.lastRebuild + this.rebuildIntervalMs - Date.now());
    this.rebuildTimer = setTimeout(() => {
      this.rebuildTimer = undefined;
      this.rebuild();
    }, wait);
    this.rebuildTimer.unref();
  }

  /** Interrupt the read in progress if it was sent before the set changed. */
  private rebuild(): void {
    const gen = this.reading;
    if (this.closed || gen === 0 || !this.dirty) return; // a newer read already covers the set
    this.lastRebuild = Date.now();
    this.o.metrics.rebuilds.inc();
    // UNBLOCK travels on another connection and may overtake the XREAD it is meant for: repeat it
    // briefly while that same read is still running.
    const attempt = (n: number): void => {
      if (this.closed || this.reading !== gen) return;
      this.unblock();
      if (n < 4) setTimeout(() => attempt(n + 1), 20 * (n + 1)).unref();
    };
    attempt(0);
  }

  private unblock(): void {
    const id = this.readerId;
    // A cluster's reads never block (slot-read.ts): nothing to unblock.
    if (id === undefined || isCluster(this.o.redis) || !isReady(this.o.redis)) return;
    sendCommand(this.o.redis, ['CLIENT', 'UNBLOCK', String(id)]).catch(() => undefined);
  }

  private async readLoop(reader: RedisClient): Promise<void> {
    const backoff = new Backoff({ baseMs: 100, maxMs: 5000, jitter: 0.5 });
    const idle = new IdleWait();
    while (!this.closed) {
      this.dropIdleTaps();
      if (this.taps.size === 0) {
        await new Promise<void>((resolve) => (this.idle = resolve));
        this.idle = undefined;
        continue;
      }
      const keys = [...this.taps.keys()];
      const ids = keys.map((k) => this.taps.get(k)?.cursor ?? '$');
      this.reading = ++this.generation;
      this.dirty = false;
      const plan = readPlan(reader, keys);
      const idOf = new Map(keys.map((k, i) => [k, ids[i] ?? '$']));
      const round = await readRound(plan, (g) =>
        sendCommand(reader, [
          'XREAD',
          'COUNT',
          String(this.count),
          ...(plan.poll ? [] : ['BLOCK', String(this.blockMs)]),
          'STREAMS',
          ...g,
          ...g.map((k) => idOf.get(k) ?? '$'),
        ]),
      );
      this.reading = 0;
      let got = 0;
      for (const reply of round.replies) {
        this.o.metrics.xread.inc();
        let batches;
        try {
          batches = parseReadReply(reply, 'XREAD');
        } catch (err) {
          this.o.log.error({ err: errorMessage(err) }, 'live relay: unexpected XREAD reply');
          continue;
        }
        for (const b of batches) {
          got += b.entries.length;
          this.deliver(b.stream, b.entries);
        }
      }
      if (round.failure) {
        if (this.closed) break;
        this.o.metrics.xreadErrors.inc();
        const now = Date.now();
        if (now - this.lastErrorLog > 10_000) {
          this.lastErrorLog = now;
          this.o.log.warn(
            { err: errorMessage(round.failure.reason), streams: keys.length },
            'live relay read failed',
          );
        }
        await sleep(backoff.next(), this.abort.signal);
        continue;
      }
      backoff.reset();
      await idle.after(plan, got, this.abort.signal);
    }
  }

  private dropIdleTaps(): void {
    let dropped = false;
    for (const [stream, tap] of this.taps) {
      if (!tap.idle) continue;
      this.taps.delete(stream);
      dropped = true;
    }
    if (dropped) this.o.metrics.streams.set(this.taps.size);
  }

  private deliver(stream: string, entries: readonly StreamEntry[]): void {
    const tap = this.taps.get(stream);
    if (!tap || entries.length === 0) return;
    // A read started before the tap was (re)created may return entries it already counts as seen.
    const fresh = entries.filter((e) => compareStreamIds(e.id, tap.cursor) > 0);
    const last = fresh[fresh.length - 1];
    if (!last) return;
    tap.cursor = last.id;
    if (channelOf(stream) === 'status') this.served.note(fresh);
    this.o.metrics.entries.inc({ channel: channelOf(stream) }, fresh.length);
    for (const l of [...tap.listeners]) {
      try {
        l(stream, fresh);
      } catch (err) {
        this.o.log.error({ err: errorMessage(err), stream }, 'live relay listener failed');
      }
    }
  }

  private async marketLengths(): Promise<(readonly [string, number])[]> {
    const market = [...this.taps.keys()].filter((s) => s.startsWith('md.')).slice(0, 500);
    if (market.length === 0 || !isReady(this.o.redis)) return [];
    try {
      const lengths = await withTimeout(
        Promise.all(market.map((s) => this.o.redis.xLen(s))),
        1000,
        'XLEN for metrics',
      );
      return market.map((s, i) => [s, lengths[i] ?? 0] as const);
    } catch {
      return [];
    }
  }
}
