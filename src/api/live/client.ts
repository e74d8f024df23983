/**
 * One WebSocket client of the live relay: its subscriptions (through the shared hub), resume from a
 * last-seen ID, heartbeats, and a bounded send path.
 *
 * Sending: a message goes straight to the socket while the socket's `bufferedAmount` is under
 * `maxBufferedBytes`; otherwise it waits in the client's queue, which the socket's write callbacks drain.
 * When the queue passes `maxQueueMessages` or `maxQueueBytes` the client is too slow: the queue is
 * dropped, its subscriptions are released and the connection is closed with 1013 ("send buffer full:
 * client too slow"), terminated `closeGraceMs` later if the close handshake does not finish. So a client
 * costs at most about `maxBufferedBytes + maxQueueBytes` of server memory, however much is published.
 *
 * Resume: `from` subscribes first (the hub returns its cursor C), then reads `(from, C]` with XRANGE in
 * pages, sending each page only when the queue is empty, while live entries (> C) wait in a per-
 * subscription buffer under the same bound; then the buffer is flushed and the subscription is live.
 * The client gets every entry after `from` once and in order.
 *
 * Heartbeat: every `heartbeatMs` a WebSocket ping frame and `{"op":"ping","ts":...}`; a client that
 * answered neither the previous ping frame nor sent anything since is terminated.
 *
 * Refusals: a subscription to an instrument no feed serves, over a cap (per connection, per user across
 * their connections, per process) or over the subscribe/unsubscribe rate is answered with an `op: error`
 * message and the connection stays usable; only protocol abuse (the flood limit) and a too slow reader
 * close it.
 */
import type { WebSocket } from '@fastify/websocket';
import { errorMessage } from '../../util/errors.js';
import type { RedisClient } from '../../bus/connection.js';
import { parseEntries, type StreamEntry } from '../../bus/replies.js';
import { compareStreamIds } from '../../bus/stream-id.js';
import type { Logger } from '../../util/log.js';
import { withTimeout } from '../http-errors.js';
import type { LiveHub, Subscription } from './hub.js';
import type { LiveMetrics } from './metrics.js';
import {
  CHANNELS,
  liveWireCode,
  parseClientMessage,
  ProtocolError,
  type Channel,
  type ClientRequest,
  type LiveErrorCode,
  type Ref,
  type ServerMessage,
} from './protocol.js';
import { sendCommand } from '../../bus/raw-command.js';
import type { ErrorCode } from '../../util/errors.js';
import { WS_CLOSE_CODES } from './close-codes.js';
import type { LiveQuota, Release } from './quota.js';
import { RateWindow } from './rate-window.js';

/** Limits of each live WebSocket connection; partial limits are completed with {@link DEFAULT_LIVE_LIMITS}. */
export interface LiveLimits {
  /**
   * Socket bytes not yet flushed to the kernel before messages queue, bytes (1 MiB).
   * @defaultValue 1048576
   */
  readonly maxBufferedBytes: number;
  /**
   * Queued messages (all subscriptions) before the client is closed with 1013, messages.
   * @defaultValue 2000
   */
  readonly maxQueueMessages: number;
  /**
   * Queued bytes before the client is closed with 1013, bytes (4 MiB).
   * @defaultValue 4194304
   */
  readonly maxQueueBytes: number;
  /**
   * Subscriptions of one connection; more are refused with `too_many_subscriptions`, subscriptions.
   * @defaultValue 100
   */
  readonly maxSubscriptions: number;
  /**
   * Subscriptions of one user across all their connections to this process; more are refused with
   * `too_many_subscriptions`, subscriptions.
   * @defaultValue 200
   */
  readonly maxSubscriptionsPerUser: number;
  /**
   * Subscriptions of all clients of this process; more are refused with `relay_full`, subscriptions.
   * @defaultValue 20000
   */
  readonly maxSubscriptionsTotal: number;
  /**
   * Connections of one user at a time, upgrades in progress included; more are refused with 429 before
   * the upgrade, connections.
   * @defaultValue 20
   */
  readonly maxClientsPerUser: number;
  /**
   * Subscribe and unsubscribe requests per `subscribeWindowMs` of one connection; more are refused with
   * `subscribe_rate_limited`, requests.
   * @defaultValue 100
   */
  readonly subscribeMessages: number;
  /**
   * The window `subscribeMessages` are counted in, ms.
   * @defaultValue 10000
   */
  readonly subscribeWindowMs: number;
  /**
   * Heartbeat period, ms.
   * @defaultValue 15000
   */
  readonly heartbeatMs: number;
  /**
   * Wait for the close handshake before terminating, ms.
   * @defaultValue 5000
   */
  readonly closeGraceMs: number;
  /**
   * Client messages per `floodWindowMs` before a 1008 close, messages.
   * @defaultValue 200
   */
  readonly floodMessages: number;
  /**
   * The window `floodMessages` are counted in, ms.
   * @defaultValue 10000
   */
  readonly floodWindowMs: number;
  /**
   * Entries per XRANGE page when resuming, entries.
   * @defaultValue 500
   */
  readonly replayPage: number;
}

/** The defaults of {@link LiveLimits}, applied (with `withDefaults`) by `startApi`. */
export const DEFAULT_LIVE_LIMITS: LiveLimits = Object.freeze({
  maxBufferedBytes: 1024 * 1024,
  maxQueueMessages: 2000,
  maxQueueBytes: 4 * 1024 * 1024,
  maxSubscriptions: 100,
  maxSubscriptionsPerUser: 200,
  maxSubscriptionsTotal: 20_000,
  maxClientsPerUser: 20,
  subscribeMessages: 100,
  subscribeWindowMs: 10_000,
  heartbeatMs: 15_000,
  closeGraceMs: 5000,
  floodMessages: 200,
  floodWindowMs: 10_000,
  replayPage: 500,
});

export const SLOW_CLIENT_REASON = 'send buffer full: client too slow';

interface Sub {
  readonly channel: Channel;
  readonly stream: string;
  /** Gives back the user's and the process's subscription slot. */
  readonly slot: Release;
  handle: Subscription | null;
  live: boolean;
  pending: StreamEntry[];
  lastId: string | null;
  removed: boolean;
}

export interface LiveClientDeps {
  readonly hub: LiveHub;
  readonly redis: RedisClient;
  readonly metrics: LiveMetrics;
  readonly log: Logger;
  readonly limits: LiveLimits;
  readonly quota: LiveQuota;
  readonly userId: string;
  readonly onClosed: (c: LiveClient) => void;
}

export class LiveClient {
  private readonly subs = new Map<string, Sub>();
  private queue: string[] = [];
  private queueHead = 0;
  private queueBytes = 0;
  private drainWaiters: (() => void)[] = [];
  private closed = false;
  private alive = true;
  private heartbeat: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly flood: RateWindow;
  private readonly subscribeRate: RateWindow;

  constructor(
    private readonly ws: WebSocket,
    private readonly d: LiveClientDeps,
  ) {
    this.flood = new RateWindow(d.limits.floodMessages, d.limits.floodWindowMs);
    this.subscribeRate = new RateWindow(d.limits.subscribeMessages, d.limits.subscribeWindowMs);
  }

  /** Attach the handlers (synchronously, so no message is missed) and greet the client. */
  start(): void {
    this.d.metrics.clients.inc();
    this.ws.on('message', (data, isBinary) => {
      this.alive = true;
      if (this.closed) return;
      if (this.flooding()) return;
      if (isBinary) {
        this.error('BAD_REQUEST', 'binary messages are not supported');
        return;
      }
      const buf = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      this.onText(buf.toString('utf8'));
    });
    this.ws.on('pong', () => (this.alive = true));
    this.ws.on('close', () => {
      clearTimeout(this.graceTimer);
      if (!this.closed) this.release('client');
    });
    this.ws.on('error', (err) => this.d.log.debug({ err: errorMessage(err) }, 'live client socket error'));
    this.heartbeat = setInterval(() => this.beat(), this.d.limits.heartbeatMs);
    this.heartbeat.unref();
    this.send({
      op: 'hello',
      user_id: this.d.userId,
      channels: CHANNELS,
      heartbeat_ms: this.d.limits.heartbeatMs,
    });
  }

  /** Close from the server's side (shutdown). */
  shutdown(): void {
    this.end('CLOSED', 'server shutting down', 'shutdown');
  }

  get userId(): string {
    return this.d.userId;
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  get queuedMessages(): number {
    return this.queue.length - this.queueHead;
  }

  // ---- incoming ------------------------------------------------------------------------------

  private flooding(): boolean {
    if (this.flood.take()) return false;
    this.end('TOO_MANY_MESSAGES', 'too many messages', 'flood');
    return true;
  }

  private onText(text: string): void {
    let req: ClientRequest;
    try {
      req = parseClientMessage(text, this.d.userId);
    } catch (err) {
      if (err instanceof ProtocolError) this.error(err.code, err.message, err.ref);
      else this.error('BAD_REQUEST', errorMessage(err));
      return;
    }
    switch (req.op) {
      case 'ping':
        this.send({ op: 'pong', ts: Date.now() });
        return;
      case 'pong':
        return;
    }
    if (!this.subscribeRate.take()) {
      const wait = this.subscribeRate.retryAfterMs();
      this.error(
        'SUBSCRIBE_RATE_LIMITED',
        `at most ${this.d.limits.subscribeMessages} subscribe/unsubscribe requests per ${this.d.limits.subscribeWindowMs} ms; retry in ${wait} ms`,
        req.ref,
        wait,
      );
      return;
    }
    switch (req.op) {
      case 'subscribe':
        this.subscribe(req).catch((err: unknown) => {
          this.d.log.warn({ err: errorMessage(err), stream: req.stream }, 'live subscribe failed');
          this.error('UNAVAILABLE', 'the stream cannot be read now; try again', req.ref);
        });
        return;
      case 'unsubscribe': {
        const sub = this.subs.get(req.stream);
        if (!sub) {
          this.error('NOT_SUBSCRIBED', `not subscribed to ${req.stream}`, req.ref);
          return;
        }
        this.drop(sub);
        this.send({ op: 'unsubscribed', channel: req.channel, stream: req.stream, ...refField(req.ref) });
        return;
      }
    }
  }

  private async subscribe(req: Extract<ClientRequest, { op: 'subscribe' }>): Promise<void> {
    const { channel, stream, from, ref } = req;
    if (this.subs.has(stream)) {
      this.error('ALREADY_SUBSCRIBED', `already subscribed to ${stream}`, ref);
      return;
    }
    if (this.subs.size >= this.d.limits.maxSubscriptions) {
      this.error(
        'TOO_MANY_SUBSCRIPTIONS',
        `at most ${this.d.limits.maxSubscriptions} subscriptions per connection`,
        ref,
      );
      return;
    }
    const slot = this.d.quota.takeSubscription(this.d.userId);
    if (slot === 'user' || slot === 'total') {
      if (slot === 'user')
        this.error(
          'TOO_MANY_SUBSCRIPTIONS',
          `at most ${this.d.limits.maxSubscriptionsPerUser} subscriptions per user`,
          ref,
        );
      else this.error('RELAY_FULL', 'the live relay holds the most subscriptions it allows', ref);
      return;
    }
    const sub: Sub = {
      channel,
      stream,
      slot,
      handle: null,
      live: from === null,
      pending: [],
      lastId: null,
      removed: false,
    };
    this.subs.set(stream, sub);
    this.d.metrics.subscriptions.inc();
    let handle: Subscription;
    try {
      if (req.instrument !== null && !(await this.d.hub.served.serves(req.instrument))) {
        if (sub.removed || this.closed) return;
        this.drop(sub);
        this.error('INSTRUMENT_NOT_SERVED', `no feed serves ${req.instrument}`, ref);
        return;
      }
      if (sub.removed || this.closed) return;
      handle = await this.d.hub.subscribe(stream, (_s, entries) => this.onEntries(sub, entries));
    } catch (err) {
      this.drop(sub);
      throw err;
    }
    if (sub.removed || this.closed) {
      handle.close();
      return;
    }
    sub.handle = handle;
    this.send({ op: 'subscribed', channel, stream, from, ...refField(ref) });
    if (from === null) return;
    let replayed = 0;
    try {
      replayed = await this.replay(sub, from, handle.cursor);
    } catch (err) {
      if (sub.removed || this.closed) return;
      this.drop(sub);
      throw err;
    }
    if (sub.removed || this.closed) return;
    const waiting = sub.pending;
    sub.pending = [];
    sub.live = true;
    this.sendEntries(sub, waiting);
    this.send({ op: 'caught_up', channel, stream, replayed });
  }

  /** Entries in `(from, until]`, page by page, each page sent only when the queue is empty. */
  private async replay(sub: Sub, from: string, until: string): Promise<number> {
    if (until === '0-0') return 0; // the stream was empty when we subscribed
    if (from !== '0' && compareStreamIds(from, until) >= 0) return 0;
    let start = from === '0' ? '-' : `(${from}`;
    let count = 0;
    for (;;) {
      const raw = await withTimeout(
        sendCommand(this.d.redis, [
          'XRANGE',
          sub.stream,
          start,
          until,
          'COUNT',
          String(this.d.limits.replayPage),
        ]),
        10_000,
        'XRANGE',
      );
      const { entries } = parseEntries(raw, 'XRANGE');
      for (const e of entries) {
        if (this.queuedMessages > 0) await this.drained();
        if (sub.removed || this.closed) return count;
        this.sendEntries(sub, [e]);
        count++;
      }
      const last = entries[entries.length - 1];
      if (!last || entries.length < this.d.limits.replayPage) return count;
      start = `(${last.id}`;
    }
  }

  private onEntries(sub: Sub, entries: readonly StreamEntry[]): void {
    if (sub.removed || this.closed) return;
    if (!sub.live) {
      sub.pending.push(...entries);
      if (sub.pending.length + this.queuedMessages > this.d.limits.maxQueueMessages)
        this.end('CLIENT_TOO_SLOW', SLOW_CLIENT_REASON, 'slow_client');
      return;
    }
    this.sendEntries(sub, entries);
  }

  private sendEntries(sub: Sub, entries: readonly StreamEntry[]): void {
    for (const e of entries) {
      if (this.closed) return;
      if (sub.lastId !== null && compareStreamIds(e.id, sub.lastId) <= 0) continue;
      sub.lastId = e.id;
      if (this.send({ channel: sub.channel, stream: sub.stream, id: e.id, fields: e.fields }))
        this.d.metrics.sent.inc({ channel: sub.channel });
    }
  }

  private drop(sub: Sub): void {
    if (sub.removed) return;
    sub.removed = true;
    sub.pending = [];
    sub.handle?.close();
    sub.slot();
    if (this.subs.get(sub.stream) === sub) this.subs.delete(sub.stream);
    this.d.metrics.subscriptions.dec();
  }

  // ---- outgoing ------------------------------------------------------------------------------

  private error(code: LiveErrorCode, message: string, ref?: Ref, retryAfterMs?: number): void {
    const wire = liveWireCode(code);
    this.d.metrics.errorsSent.inc({ code: wire });
    this.send({
      op: 'error',
      code: wire,
      message,
      ...refField(ref),
      ...(retryAfterMs === undefined ? {} : { retry_after_ms: retryAfterMs }),
    });
  }

  /** Send or queue; false when the client is (or has just been) closed. */
  private send(msg: ServerMessage): boolean {
    if (this.closed) return false;
    const text = JSON.stringify(msg);
    if (this.queuedMessages === 0 && this.ws.bufferedAmount < this.d.limits.maxBufferedBytes) {
      this.write(text);
      return true;
    }
    this.queue.push(text);
    this.queueBytes += Buffer.byteLength(text);
    this.d.metrics.noteQueueBytes(this.queueBytes);
    if (
      this.queuedMessages > this.d.limits.maxQueueMessages ||
      this.queueBytes > this.d.limits.maxQueueBytes
    ) {
      this.end('CLIENT_TOO_SLOW', SLOW_CLIENT_REASON, 'slow_client');
      return false;
    }
    return true;
  }

  private write(text: string): void {
    this.ws.send(text, (err) => {
      if (!err) this.pump();
    });
  }

  private pump(): void {
    while (
      !this.closed &&
      this.queuedMessages > 0 &&
      this.ws.bufferedAmount < this.d.limits.maxBufferedBytes
    ) {
      const text = this.queue[this.queueHead] ?? '';
      this.queue[this.queueHead] = '';
      this.queueHead++;
      this.queueBytes -= Buffer.byteLength(text);
      this.write(text);
    }
    if (this.queuedMessages === 0) this.emptyQueue();
  }

  /** Drop what is queued and wake whoever waits for the queue to drain. */
  private emptyQueue(): void {
    this.queue = [];
    this.queueHead = 0;
    this.queueBytes = 0;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private drained(): Promise<void> {
    if (this.queuedMessages === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private beat(): void {
    if (this.closed) return;
    if (!this.alive) {
      this.release('ping_timeout');
      this.ws.terminate();
      return;
    }
    this.alive = false;
    try {
      this.ws.ping();
    } catch {
      // the socket is closing; its close event releases the client
    }
    this.send({ op: 'ping', ts: Date.now() });
  }

  /**
   * Close with the WebSocket close code of `code` (WS_CLOSE_CODES) and `reason`, and make sure the
   * connection ends even if the peer never answers.
   */
  private end(code: ErrorCode, reason: string, why: string): void {
    if (this.closed) return;
    this.release(why);
    try {
      this.ws.close(WS_CLOSE_CODES[code], reason);
    } catch {
      this.ws.terminate();
    }
    this.graceTimer = setTimeout(() => this.ws.terminate(), this.d.limits.closeGraceMs);
    this.graceTimer.unref();
  }

  /** Free everything this client holds: subscriptions, queue, timers. */
  private release(why: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const sub of [...this.subs.values()]) this.drop(sub);
    this.emptyQueue();
    this.d.metrics.clients.dec();
    this.d.metrics.disconnects.inc({ reason: why });
    this.d.onClosed(this);
  }
}

function refField(ref: Ref): { id?: string | number } {
  return ref === undefined ? {} : { id: ref };
}
