/**
 * A consumer-group consumer over many streams: one blocking XREADGROUP for all of them, handlers per
 * entry or per batch, ack after success with one XACK per stream and batch, a bound on entries in
 * flight, retries with backoff taken from Redis's own delivery count and idle time (so they survive
 * restarts), reclaiming of entries left idle by dead consumers (XAUTOCLAIM with a carried cursor),
 * dead letters, recovery from NOGROUP, and a close that interrupts the blocked read and flushes acks.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { ClosedError, errorMessage, InvalidArgumentError } from '../util/errors.js';
import { DecodeError } from './errors.js';
import type { Logger } from '../util/log.js';
import { Backoff, backoffDelay } from '../util/backoff.js';
import { sleep } from '../util/sleep.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import type { Fields } from './codec.js';
import { isCluster, type RedisClient, duplicateRedis } from './connection.js';
import { IdleWait, readPlan, readRound } from './slot-read.js';
import { moveToDeadLetter, type DeadLetterReason } from './dead-letter.js';
import { ensureGroup } from './groups.js';
import type { BusMetrics } from './metrics.js';
import { isNoGroupReply } from './redis-errors.js';
import {
  parseAutoClaim,
  parseEntries,
  parsePendingEntries,
  parseReadReply,
  type StreamEntry,
} from './replies.js';
import { sendCommand } from './raw-command.js';
import { DEFAULT_STREAM_POLICY, type StreamPolicy } from './stream-policy.js';

/** The default consumer name within a group: `<hostname>-<pid>`. */
export function defaultConsumerName(): string {
  return `${hostname()}-${process.pid}`;
}

/** One entry handed to a handler. */
export interface Delivery<T = Fields> {
  readonly stream: string;
  readonly id: string;
  readonly fields: Fields;
  /** The decoded value (`fields` itself when no `decode` is given). */
  readonly value: T;
  /** How many times Redis has delivered this entry, 1 on the first delivery. */
  readonly deliveries: number;
}

export interface ConsumerOptions<T = Fields> {
  /** Consumer group name, e.g. `strategy.ma_cross`. */
  readonly group: string;
  /**
   * Consumer name within the group.
   * @defaultValue `<hostname>-<pid>`
   */
  readonly consumer?: string | undefined;
  /** Streams to read, all in one XREADGROUP. */
  readonly streams: readonly string[];
  /**
   * Where a group created by this consumer starts: `$` (new entries), `0` (all), or an entry ID.
   * @defaultValue `$`
   */
  readonly startId?: string;
  /**
   * XREADGROUP BLOCK, ms.
   * @defaultValue 2000
   */
  readonly blockMs?: number;
  /**
   * Most entries read per stream per XREADGROUP, entries.
   * @defaultValue 100
   */
  readonly batchSize?: number | undefined;
  /**
   * Most entries handed to handlers and not yet acknowledged, entries; reading waits above it.
   * @defaultValue 10000
   */
  readonly maxInFlight?: number | undefined;
  /**
   * Keep each stream strictly in ID order: after a failure the stream's later entries wait (pending)
   * until the failed one succeeds or is dead-lettered. `false`: later entries go on.
   * @defaultValue false
   */
  readonly ordered?: boolean;
  /**
   * How often entries idle in other (dead) consumers are looked for, ms.
   * @defaultValue 5000
   */
  readonly claimIntervalMs?: number;
  /**
   * Idle time after which another consumer's pending entry is reclaimed, ms (60000 = 1 min).
   * @defaultValue 60000
   */
  readonly claimMinIdleMs?: number;
  /**
   * Most entries reclaimed per cycle, over all streams (XAUTOCLAIM COUNT), entries.
   * @defaultValue 100
   */
  readonly claimBatchSize?: number;
  /**
   * Deliveries after which a failing entry moves to the dead-letter stream, deliveries.
   * @defaultValue 5
   */
  readonly maxDeliveries?: number;
  /**
   * Delay before the first retry of a failed entry, ms; doubles per delivery.
   * @defaultValue 1000
   */
  readonly retryBaseMs?: number;
  /**
   * Largest delay between retries, ms.
   * @defaultValue 60000
   */
  readonly retryMaxMs?: number;
  /**
   * How often this consumer's own failed entries are checked for a due retry, ms.
   * @defaultValue 250
   */
  readonly retryIntervalMs?: number;
  /**
   * How long `close()` waits for running handlers before leaving their entries pending, ms.
   * @defaultValue 10000
   */
  readonly closeTimeoutMs?: number;
  /**
   * Turn fields into a value; a throw (DecodeError) sends the entry straight to the dead-letter stream.
   * @defaultValue none (the value is `fields` itself)
   */
  readonly decode?: (fields: Fields, stream: string) => T;
  /**
   * Called once per entry; entries of one stream are handled one after another, in ID order.
   * @defaultValue none (exactly one of `handler` and `batchHandler` is given)
   */
  readonly handler?: (delivery: Delivery<T>) => Promise<void> | void;
  /**
   * Called with all entries of one stream read together; all succeed or all are retried.
   * @defaultValue none (exactly one of `handler` and `batchHandler` is given)
   */
  readonly batchHandler?: (deliveries: readonly Delivery<T>[]) => Promise<void> | void;
  /**
   * Counts acknowledged, claimed, failed and dead-lettered entries per stream and group.
   * @defaultValue none (not counted)
   */
  readonly metrics?: BusMetrics | undefined;
  /**
   * Where retries, dead letters and Redis failures are logged.
   * @defaultValue none (not logged)
   */
  readonly log?: Logger | undefined;
  /**
   * Gives the retention of the dead-letter streams this consumer writes.
   * @defaultValue `DEFAULT_STREAM_POLICY` (dead-letter streams kept at `DEAD_LETTER_RETENTION`)
   */
  readonly policy?: StreamPolicy;
}

/** The defaults of {@link ConsumerOptions}, applied by the `StreamConsumer` constructor. */
export const CONSUMER_DEFAULTS = Object.freeze({
  startId: '$',
  blockMs: 2000,
  batchSize: 100,
  maxInFlight: 10_000,
  ordered: false,
  claimIntervalMs: 5000,
  claimMinIdleMs: 60_000,
  claimBatchSize: 100,
  maxDeliveries: 5,
  retryBaseMs: 1000,
  retryMaxMs: 60_000,
  retryIntervalMs: 250,
  closeTimeoutMs: 10_000,
  policy: DEFAULT_STREAM_POLICY,
} satisfies Partial<ConsumerOptions>);

export interface DeadLetterEvent {
  readonly stream: string;
  readonly id: string;
  readonly reason: DeadLetterReason;
  readonly error: string;
}

/** Events a consumer emits; none is required to have a listener. */
export interface ConsumerEvents {
  /** A handler threw; the entry stays pending for a retry unless it was dead-lettered. */
  handlerError: [error: unknown, stream: string, id: string, deliveries: number];
  deadLettered: [event: DeadLetterEvent];
  /** Entries of other consumers (or this one's, long idle) were taken over. */
  claimed: [stream: string, ids: readonly string[]];
  /** A group was missing (NOGROUP, e.g. Redis restarted without persistence) and was created again. */
  groupRecreated: [stream: string];
  /** A Redis call of the consumer failed; it backs off and tries again. */
  redisError: [error: unknown, operation: string];
  closed: [];
}

interface Item {
  readonly entry: StreamEntry;
  readonly deliveries: number;
}

type BatchResult = 'ok' | 'failed';

export class StreamConsumer<T = Fields> extends EventEmitter<ConsumerEvents> {
  readonly group: string;
  readonly consumer: string;
  readonly streams: readonly string[];
  private readonly o: WithDefaults<ConsumerOptions<T>, typeof CONSUMER_DEFAULTS>;
  private reader: RedisClient | undefined;
  private readerId: number | undefined;
  private state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  private closePromise: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private inFlight = 0;
  /** Entry IDs handed to handlers and not finished, per stream (read by the retry and claim loops). */
  private readonly inFlightIds = new Map<string, Set<string>>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private capacityWaiters: (() => void)[] = [];
  /** Streams that may hold failed entries of this consumer (checked by the retry loop). */
  private readonly suspect = new Set<string>();
  /** Ordered mode: streams whose reading waits for a failed entry. */
  private readonly paused = new Set<string>();
  private readonly claimCursor = new Map<string, string>();
  private readonly unacked = new Map<string, Set<string>>();
  private recovering: Promise<void> | undefined;
  private readTurn = 0;

  constructor(
    private readonly client: RedisClient,
    private readonly opts: ConsumerOptions<T>,
  ) {
    super();
    if (!opts.handler === !opts.batchHandler)
      throw new InvalidArgumentError('handler', 'give exactly one of handler and batchHandler');
    if (opts.streams.length === 0) throw new InvalidArgumentError('streams', 'must not be empty');
    this.group = opts.group;
    this.consumer = opts.consumer ?? defaultConsumerName();
    this.streams = [...new Set(opts.streams)];
    this.o = withDefaults(CONSUMER_DEFAULTS, opts);
    // Entries this consumer left pending before a restart under the same name are retried first.
    for (const s of this.streams) this.suspect.add(s);
  }

  /** Entries handed to handlers and not yet finished. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  /** Create the groups (if missing), open the blocking connection and start reading. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new ClosedError('consumer');
    this.state = 'running';
    for (const s of this.streams) await ensureGroup(this.client, s, this.group, this.o.startId);
    // Blocking reads get their own connection, with a command timeout longer than the block.
    const reader = duplicateRedis(this.client, { commandTimeoutMs: this.o.blockMs + 10_000 });
    reader.on('error', (err: unknown) =>
      this.opts.log?.debug({ err: errorMessage(err) }, 'consumer reader connection error'),
    );
    await reader.connect();
    this.reader = reader;
    // close() unblocks the read by its connection id; a cluster's reads never block (see slot-read.ts).
    if (!isCluster(reader)) {
      this.readerId = await reader.clientId();
      reader.on('ready', () => {
        // A reconnect gets a new client id, which close() needs to unblock the read.
        reader.clientId().then(
          (id) => (this.readerId = id),
          () => undefined,
        );
      });
    }
    this.loops = [this.readLoop(), this.retryLoop(), this.claimLoop()];
  }

  /** Stop reading, interrupt the blocked read, let running handlers finish, flush acks. Idempotent. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private get running(): boolean {
    return this.state === 'running';
  }

  private async doClose(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'closing';
    this.abort.abort();
    this.wakeCapacityWaiters();
    if (wasRunning) {
      await this.interruptRead();
      await Promise.allSettled(this.loops);
      const drained = Promise.allSettled([...this.chains.values()]);
      await Promise.race([drained, sleep(this.o.closeTimeoutMs)]);
      await this.flushAcks().catch(() => undefined);
    }
    const reader = this.reader;
    if (reader?.isOpen) reader.destroy();
    this.state = 'closed';
    this.emit('closed');
  }

  private async interruptRead(): Promise<void> {
    const reader = this.reader;
    if (!reader) return;
    if (!isCluster(this.client) && this.client.isReady && this.readerId !== undefined) {
      await sendCommand(this.client, ['CLIENT', 'UNBLOCK', String(this.readerId)]).catch(() => undefined);
    }
    // If the read was not blocked yet (or Redis is unreachable), cut the connection instead.
    const readDone = this.loops[0] ?? Promise.resolve();
    const finished = await Promise.race([readDone.then(() => true), sleep(200).then(() => false)]);
    if (!finished && reader.isOpen) reader.destroy();
  }

  // ---- reading -------------------------------------------------------------------------------

  private async readLoop(): Promise<void> {
    const backoff = new Backoff({ baseMs: 100, maxMs: 5000, jitter: 0.5 });
    const idle = new IdleWait();
    const reader = this.reader;
    if (!reader) return;
    while (this.running) {
      await this.waitForCapacity();
      if (!this.running) break;
      let active = this.streams.filter((s) => !this.paused.has(s));
      if (active.length === 0) {
        await sleep(this.o.retryIntervalMs, this.abort.signal);
        continue;
      }
      // COUNT applies per stream: with less room than streams, read one entry from a rotating subset.
      const capacity = this.o.maxInFlight - this.inFlight;
      if (capacity < active.length) {
        const from = this.readTurn++ % active.length;
        active = [...active.slice(from), ...active.slice(0, from)].slice(0, capacity);
      }
      const count = Math.max(1, Math.min(this.o.batchSize, Math.floor(capacity / active.length)));
      // One server: one blocking read. A cluster: a non-blocking read per slot, then a short idle wait
      // when none brought anything.
      const plan = readPlan(reader, active);
      const round = await readRound(plan, (g) =>
        reader.xReadGroup(
          this.group,
          this.consumer,
          g.map((key) => ({ key, id: '>' })),
          plan.poll ? { COUNT: count } : { COUNT: count, BLOCK: this.o.blockMs },
        ),
      );
      let got = 0;
      for (const reply of round.replies) {
        for (const batch of parseReadReply(reply)) {
          if (batch.entries.length === 0) continue;
          got += batch.entries.length;
          void this.dispatch(
            batch.stream,
            batch.entries.map((entry) => ({ entry, deliveries: 1 })),
          );
        }
      }
      if (round.failure) {
        if (!this.running) break;
        if (isNoGroupReply(round.failure.reason)) {
          await this.recoverGroups();
          continue;
        }
        this.redisError(round.failure.reason, 'XREADGROUP');
        await sleep(backoff.next(), this.abort.signal);
        continue;
      }
      backoff.reset();
      await idle.after(plan, got, this.abort.signal);
    }
  }

  /**
   * Queue a batch behind the stream's previous batches, so one stream is handled in order while
   * different streams run concurrently. Resolves when the batch has been handled.
   */
  private dispatch(stream: string, items: readonly Item[]): Promise<BatchResult> {
    this.inFlight += items.length;
    let ids = this.inFlightIds.get(stream);
    if (!ids) this.inFlightIds.set(stream, (ids = new Set()));
    for (const it of items) ids.add(it.entry.id);
    const prev = this.chains.get(stream) ?? Promise.resolve();
    const run = prev
      .then(() => this.processBatch(stream, items))
      .catch((err: unknown): BatchResult => {
        this.redisError(err, 'process');
        this.suspect.add(stream);
        return 'failed';
      })
      .finally(() => {
        this.inFlight -= items.length;
        const set = this.inFlightIds.get(stream);
        if (set) for (const it of items) set.delete(it.entry.id);
        if (this.chains.get(stream) === run) this.chains.delete(stream);
        this.wakeCapacityWaiters();
      });
    this.chains.set(stream, run);
    return run;
  }

  private async processBatch(stream: string, items: readonly Item[]): Promise<BatchResult> {
    const m = this.opts.metrics;
    m?.entriesRead.inc({ stream, group: this.group }, items.length);
    const deliveries: Delivery<T>[] = [];
    for (const it of items) {
      try {
        const value = this.opts.decode ? this.opts.decode(it.entry.fields, stream) : (it.entry.fields as T);
        deliveries.push({
          stream,
          id: it.entry.id,
          fields: it.entry.fields,
          value,
          deliveries: it.deliveries,
        });
      } catch (err) {
        await this.deadLetter(stream, it.entry.id, it.entry.fields, it.deliveries, 'decode', err);
      }
    }
    const acks: string[] = [];
    let result: BatchResult = 'ok';
    if (this.opts.batchHandler) {
      if (deliveries.length > 0) {
        const stop = m?.handlerDuration.startTimer({ group: this.group });
        try {
          await this.opts.batchHandler(deliveries);
          for (const d of deliveries) acks.push(d.id);
        } catch (err) {
          result = 'failed';
          for (const d of deliveries) await this.onFailure(d, err);
        } finally {
          stop?.();
        }
      }
    } else {
      const handler = this.opts.handler;
      for (const d of deliveries) {
        // Ordered: once one entry failed, the later ones stay pending for the retry loop.
        if (result === 'failed' && this.o.ordered) break;
        const stop = m?.handlerDuration.startTimer({ group: this.group });
        try {
          await handler?.(d);
          acks.push(d.id);
        } catch (err) {
          if ((await this.onFailure(d, err)) === 'pending') result = 'failed';
        } finally {
          stop?.();
        }
      }
    }
    if (result === 'failed' && this.o.ordered) {
      // Later entries of this batch were never handled: they are pending and retried in order.
      this.suspect.add(stream);
      this.paused.add(stream);
    }
    this.queueAcks(stream, acks);
    await this.flushAcks(stream);
    return result;
  }

  /** A handler failed: dead-letter the entry when retrying cannot help or is used up, else leave it pending. */
  private async onFailure(d: Delivery<T>, err: unknown): Promise<'pending' | 'dead'> {
    this.opts.metrics?.handlerErrors.inc({ stream: d.stream, group: this.group });
    this.emit('handlerError', err, d.stream, d.id, d.deliveries);
    if (err instanceof DecodeError) {
      await this.deadLetter(d.stream, d.id, d.fields, d.deliveries, 'decode', err);
      return 'dead';
    }
    if (d.deliveries >= this.o.maxDeliveries) {
      await this.deadLetter(d.stream, d.id, d.fields, d.deliveries, 'max-deliveries', err);
      return 'dead';
    }
    this.opts.log?.warn(
      { stream: d.stream, id: d.id, deliveries: d.deliveries, err: errorMessage(err) },
      'handler failed; entry will be retried',
    );
    this.suspect.add(d.stream);
    return 'pending';
  }

  private async deadLetter(
    stream: string,
    id: string,
    fields: Fields | null,
    deliveries: number,
    reason: DeadLetterReason,
    error: unknown,
  ): Promise<void> {
    await moveToDeadLetter(
      this.client,
      {
        stream,
        group: this.group,
        entryId: id,
        consumer: this.consumer,
        deliveries,
        reason,
        error,
        fields,
      },
      { policy: this.o.policy },
    );
    this.opts.metrics?.entriesDeadLettered.inc({ stream, group: this.group, reason });
    this.opts.log?.warn(
      { stream, id, reason, deliveries, err: errorMessage(error) },
      'entry moved to dead letters',
    );
    this.emit('deadLettered', { stream, id, reason, error: errorMessage(error) });
  }

  // ---- acks ----------------------------------------------------------------------------------

  private queueAcks(stream: string, ids: readonly string[]): void {
    if (ids.length === 0) return;
    let set = this.unacked.get(stream);
    if (!set) this.unacked.set(stream, (set = new Set()));
    for (const id of ids) set.add(id);
  }

  /** XACK what is queued (for one stream or all); on failure the IDs stay queued for the next flush. */
  private async flushAcks(only?: string): Promise<void> {
    const targets = only ? [only] : [...this.unacked.keys()];
    for (const stream of targets) {
      const set = this.unacked.get(stream);
      if (!set || set.size === 0) continue;
      const ids = [...set];
      try {
        await this.client.xAck(stream, this.group, ids);
        for (const id of ids) set.delete(id);
        if (set.size === 0) this.unacked.delete(stream);
        this.opts.metrics?.entriesAcked.inc({ stream, group: this.group }, ids.length);
      } catch (err) {
        // The entries stay pending in Redis too; if this process dies they are redelivered (at least once).
        this.redisError(err, 'XACK');
      }
    }
  }

  // ---- retries of this consumer's failed entries ---------------------------------------------

  private async retryLoop(): Promise<void> {
    while (this.running) {
      await sleep(this.o.retryIntervalMs, this.abort.signal);
      if (!this.running) break;
      if (this.unacked.size > 0) await this.flushAcks();
      for (const stream of [...this.suspect]) {
        if (!this.running) break;
        try {
          if (await this.retryStream(stream)) {
            this.suspect.delete(stream);
            this.paused.delete(stream);
          }
        } catch (err) {
          if (isNoGroupReply(err)) await this.recoverGroups();
          else this.redisError(err, 'retry');
        }
      }
    }
  }

  /**
   * Retry this consumer's pending entries of one stream whose backoff is due (delivery count and
   * idle time come from Redis, so a restarted process picks up where it left off). Returns true when
   * none is left pending.
   */
  private async retryStream(stream: string): Promise<boolean> {
    const pending = parsePendingEntries(
      await sendCommand(this.client, [
        'XPENDING',
        stream,
        this.group,
        '-',
        '+',
        String(this.o.claimBatchSize),
        this.consumer,
      ]),
    ).filter((p) => !this.isInFlight(stream, p.id));
    if (pending.length === 0) return !this.chains.has(stream);
    for (const p of pending) {
      if (!this.running) return false;
      const due =
        p.idleMs >= backoffDelay({ baseMs: this.o.retryBaseMs, maxMs: this.o.retryMaxMs }, p.deliveries);
      if (!due) {
        if (this.o.ordered) return false;
        continue;
      }
      if (p.deliveries >= this.o.maxDeliveries) {
        // Delivered the maximum number of times without an ack (the process died in the handler?).
        const fields = await this.claimOne(stream, p.id);
        await this.deadLetter(
          stream,
          p.id,
          fields,
          p.deliveries,
          fields ? 'max-deliveries' : 'deleted-while-pending',
          new Error(`delivered ${p.deliveries} times without success`),
        );
        continue;
      }
      const fields = await this.claimOne(stream, p.id);
      if (!fields) {
        await this.deadLetter(
          stream,
          p.id,
          null,
          p.deliveries,
          'deleted-while-pending',
          new Error('entry deleted while pending'),
        );
        continue;
      }
      this.opts.metrics?.entriesClaimed.inc({ stream, group: this.group });
      await this.waitForCapacity();
      const r = await this.dispatch(stream, [{ entry: { id: p.id, fields }, deliveries: p.deliveries + 1 }]);
      if (r === 'failed' && this.o.ordered) return false;
    }
    return false; // look again next round: more may be pending than one page showed
  }

  /** XCLAIM one entry to this consumer (counts a delivery); null when the entry no longer exists. */
  private async claimOne(stream: string, id: string): Promise<Fields | null> {
    const r = parseEntries(
      await sendCommand(this.client, ['XCLAIM', stream, this.group, this.consumer, '0', id]),
      'XCLAIM',
    );
    return r.entries[0]?.fields ?? null;
  }

  // ---- reclaiming entries of dead consumers (the pending scavenger) ---------------------------

  private async claimLoop(): Promise<void> {
    const backoff = new Backoff({ baseMs: 500, maxMs: 30_000, jitter: 0.5 });
    let delay = this.o.claimIntervalMs;
    let turn = 0;
    while (this.running) {
      await sleep(delay, this.abort.signal);
      if (!this.running) break;
      try {
        const claimed = await this.claimCycle(turn++);
        backoff.reset();
        // Keep going while there is work, so a long pending list drains in successive cycles.
        delay = claimed > 0 ? 0 : this.o.claimIntervalMs;
      } catch (err) {
        if (isNoGroupReply(err)) await this.recoverGroups();
        else this.redisError(err, 'XAUTOCLAIM');
        delay = backoff.next();
      }
    }
  }

  /** One scavenger cycle: at most `claimBatchSize` entries over all streams, starting at a rotating stream. */
  private async claimCycle(turn: number): Promise<number> {
    let budget = this.o.claimBatchSize;
    let claimed = 0;
    const n = this.streams.length;
    for (let k = 0; k < n && budget > 0 && this.running; k++) {
      const stream = this.streams[(turn + k) % n] as string;
      await this.waitForCapacity();
      if (!this.running) break;
      const cursor = this.claimCursor.get(stream) ?? '0-0';
      // Never claim more than the in-flight bound has room for.
      const room = Math.max(1, Math.min(budget, this.o.maxInFlight - this.inFlight));
      const r = parseAutoClaim(
        await sendCommand(this.client, [
          'XAUTOCLAIM',
          stream,
          this.group,
          this.consumer,
          String(this.o.claimMinIdleMs),
          cursor,
          'COUNT',
          String(room),
        ]),
      );
      this.claimCursor.set(stream, r.nextId);
      budget -= r.entries.length + r.deletedIds.length;
      claimed += r.entries.length + r.deletedIds.length;
      for (const id of r.deletedIds) {
        await this.deadLetter(
          stream,
          id,
          null,
          0,
          'deleted-while-pending',
          new Error('entry trimmed or deleted while pending'),
        );
      }
      const fresh = r.entries.filter((e) => !this.isInFlight(stream, e.id));
      if (fresh.length === 0) continue;
      this.opts.metrics?.entriesClaimed.inc({ stream, group: this.group }, fresh.length);
      this.emit(
        'claimed',
        stream,
        fresh.map((e) => e.id),
      );
      const counts = await this.deliveryCounts(stream, fresh);
      const items: Item[] = [];
      for (const e of fresh) {
        const deliveries = counts.get(e.id) ?? 1;
        if (deliveries > this.o.maxDeliveries) {
          await this.deadLetter(
            stream,
            e.id,
            e.fields,
            deliveries - 1,
            'max-deliveries',
            new Error(`delivered ${deliveries - 1} times without an ack`),
          );
        } else items.push({ entry: e, deliveries });
      }
      if (items.length > 0) void this.dispatch(stream, items);
    }
    return claimed;
  }

  /** Delivery counts of claimed entries (XAUTOCLAIM does not return them). */
  private async deliveryCounts(
    stream: string,
    entries: readonly StreamEntry[],
  ): Promise<Map<string, number>> {
    const first = entries[0]?.id ?? '-';
    const last = entries[entries.length - 1]?.id ?? '+';
    const pending = parsePendingEntries(
      await sendCommand(this.client, [
        'XPENDING',
        stream,
        this.group,
        first,
        last,
        String(entries.length + 100),
        this.consumer,
      ]),
    );
    return new Map(pending.map((p) => [p.id, p.deliveries]));
  }

  // ---- helpers -------------------------------------------------------------------------------

  /** Create missing groups again (NOGROUP): from `0`, since a stream that lost its group lost its data too. */
  private recoverGroups(): Promise<void> {
    this.recovering ??= (async () => {
      for (const s of this.streams) {
        try {
          if (await ensureGroup(this.client, s, this.group, '0')) {
            this.claimCursor.delete(s);
            this.opts.log?.warn(
              { stream: s, group: this.group },
              'consumer group was missing; created it again',
            );
            this.emit('groupRecreated', s);
          }
        } catch (err) {
          this.redisError(err, 'XGROUP CREATE');
          await sleep(500, this.abort.signal);
        }
      }
    })().finally(() => (this.recovering = undefined));
    return this.recovering;
  }

  private isInFlight(stream: string, id: string): boolean {
    return this.inFlightIds.get(stream)?.has(id) ?? false;
  }

  private waitForCapacity(): Promise<void> {
    if (this.inFlight < this.o.maxInFlight || !this.running) return Promise.resolve();
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  private wakeCapacityWaiters(): void {
    // Resume reading only once half the room is free: reads of a handful of entries would cost a
    // round trip (and an XACK) each.
    if (this.inFlight > this.o.maxInFlight / 2 && this.running) return;
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const w of waiters) w();
  }

  private redisError(err: unknown, operation: string): void {
    this.opts.log?.warn(
      { err: errorMessage(err), operation, group: this.group },
      'consumer redis operation failed',
    );
    if (this.listenerCount('redisError') > 0) this.emit('redisError', err, operation);
  }
}
