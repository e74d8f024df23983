/**
 * One WebSocket of a `SocketPlan`, kept alive: it waits for the venue's connection budget before every
 * connect, reconnects with jittered exponential backoff after a loss (reset once a connection delivers
 * a message), sends the plan's subscribe frames after every open (the resubscribe) paced by the
 * per-connection subscribe budget, keeps the heartbeat the adapter names (ping frames, or the venue's
 * text ping every `intervalMs` (every third of the silence timeout when that is shorter) whose answer the adapter reports as `pong`), drops a silent socket (no
 * message, or a ping unanswered, for `silenceTimeoutMs`), reconnects at once when asked to rotate
 * (proactively after `rotateAfterMs`, or on the adapter's `reconnect` message), and pauses and resumes
 * reading for back-pressure.
 */
import WebSocket from 'ws';
import { Backoff, type BackoffOptions } from '../../util/backoff.js';
import { sleep } from '../../util/sleep.js';
import type { Logger } from '../../util/log.js';
import { WindowGate } from './connection-budget.js';
import type { Taken } from './windows.js';
import type { Heartbeat, RateWindow, VenueMessage } from './venue.js';

export interface VenueSocketOptions {
  /** Venue name, for logs. */
  readonly venue: string;
  /** For reasons and logs, e.g. `spot`. */
  readonly label: string;
  /** Full URL to connect to. */
  readonly url: string;
  /** Text frames sent after every open, in order. */
  readonly subscribe: readonly string[];
  /** Subscribe messages allowed per window on one connection. */
  readonly subscribeLimit: RateWindow;
  /** New connections of the venue (shared by every socket of the process). */
  readonly connections: WindowGate;
  readonly heartbeat: Heartbeat;
  /** See KitSourceOptions.silenceTimeoutMs; also the handshake timeout, ms. */
  readonly silenceTimeoutMs: number;
  /** Reconnect proactively after this long connected, ms. */
  readonly rotateAfterMs: number;
  /**
   * A close frame from the server is the venue's notice (`VenueAdapter.serverCloseIsNotice`): reconnect
   * at once. An abrupt loss (no close frame, code 1006) is still a loss with backoff.
   */
  readonly serverCloseIsNotice: boolean;
  /** Reconnect delays after a failed or silent connection. */
  readonly backoff: BackoffOptions;
  /** Reads one text frame (the adapter's `parseMessage` for this socket). */
  readonly parse: (text: string) => VenueMessage;
  /** Where connection events are logged. */
  readonly logger: Logger;
}

export interface VenueSocketHooks {
  /** The socket is open. `reconnect`: an earlier connection of this run existed. */
  readonly onOpen: (reconnect: boolean) => void;
  /**
   * A parsed text frame other than `pong` (`reconnect` too, after the socket acted on it). `closing`:
   * it came on a socket being closed (rotation), after its replacement was asked for.
   */
  readonly onMessage: (msg: VenueMessage, text: string, closing: boolean) => void;
  /** The socket is gone (not called when stopping). `planned`: rotation; the next attempt starts at once. */
  readonly onClosed: (info: { planned: boolean; reason: string; retryInMs: number }) => void;
}

interface Session {
  end(planned: boolean, reason: string): void;
}

function text(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

export class VenueSocket {
  private socket: WebSocket | null = null;
  private session: Session | null = null;
  private pausedByConsumer = false;
  private readonly backoff: Backoff;
  private lastMessageAt = 0;
  private pingSentAt: number | null = null;
  private lastPingAt = 0;
  private attempts = 0;

  constructor(
    private readonly opts: VenueSocketOptions,
    private readonly hooks: VenueSocketHooks,
  ) {
    this.backoff = new Backoff(opts.backoff);
  }

  get label(): string {
    return this.opts.label;
  }

  /** Connection attempts made so far. */
  get connectAttempts(): number {
    return this.attempts;
  }

  get isOpen(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Stop reading from the socket (back-pressure). Applies to later connections too until `resume`. */
  pause(): void {
    this.pausedByConsumer = true;
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.pause();
  }

  resume(): void {
    this.pausedByConsumer = false;
    if (this.socket?.readyState === WebSocket.OPEN) {
      // Silence is not counted while paused: start the clocks again.
      this.lastMessageAt = Date.now();
      this.pingSentAt = null;
      this.socket.resume();
    }
  }

  /** Close the current socket and connect again at once (no backoff). */
  rotate(reason: string): void {
    this.session?.end(true, reason);
  }

  /** Connect, and keep reconnecting, until the signal aborts; resolves once the last socket is closed. */
  async run(signal: AbortSignal): Promise<void> {
    const { venue, label } = this.opts;
    let reconnect = false;
    let delay = 0;
    while (!signal.aborted) {
      if (delay > 0) await sleep(delay, signal);
      if (signal.aborted) break;
      const taken = await this.opts.connections.acquirePending(signal);
      if (!taken) break;
      let end: { planned: boolean; reason: string };
      try {
        end = await this.connectOnce(signal, reconnect, taken);
      } catch (err) {
        end = {
          planned: false,
          reason: `cannot connect: ${err instanceof Error ? err.message : String(err)}`,
        };
      } finally {
        taken.settle(Date.now()); // never left pending, whatever happened
      }
      if (signal.aborted) break;
      delay = end.planned ? 0 : this.backoff.next();
      this.opts.logger.warn(
        { source: venue, socket: label, reason: end.reason, retryInMs: delay },
        `${venue} socket closed`,
      );
      this.hooks.onClosed({ planned: end.planned, reason: end.reason, retryInMs: delay });
      reconnect = true;
    }
  }

  private connectOnce(
    signal: AbortSignal,
    reconnect: boolean,
    taken: Taken,
  ): Promise<{ planned: boolean; reason: string }> {
    const { silenceTimeoutMs, rotateAfterMs, heartbeat, venue, label } = this.opts;
    const closeGraceMs = Math.min(1000, silenceTimeoutMs);
    this.attempts += 1;
    return new Promise((resolve) => {
      const ws = new WebSocket(this.opts.url, {
        handshakeTimeout: silenceTimeoutMs,
        perMessageDeflate: false,
      });
      this.socket = ws;
      let planned = false;
      let reason: string | null = null;
      let lastError: string | null = null;
      let gotData = false;
      const timers: NodeJS.Timeout[] = [];
      const stopSending = new AbortController();

      const end = (isPlanned: boolean, why: string, graceful: boolean): void => {
        if (reason !== null) return; // the first reason wins
        planned = isPlanned;
        reason = why;
        stopSending.abort();
        if (graceful && ws.readyState === WebSocket.OPEN) {
          if (ws.isPaused) ws.resume(); // to read the server's close frame
          ws.close(1000, why.slice(0, 100));
          timers.push(setTimeout(() => ws.terminate(), closeGraceMs));
        } else {
          ws.terminate();
        }
      };
      const session: Session = { end: (p, why) => end(p, why, true) };
      this.session = session;
      const onAbort = (): void => end(true, 'stopped', true);
      signal.addEventListener('abort', onAbort, { once: true });

      const sendPing = (t: number): void => {
        this.lastPingAt = t;
        if (this.pingSentAt === null) this.pingSentAt = t;
        if (heartbeat.kind === 'frame') ws.ping();
        else ws.send(heartbeat.message);
      };
      const check = (): void => {
        if (ws.readyState !== WebSocket.OPEN) return;
        const t = Date.now();
        if (ws.isPaused) {
          this.lastMessageAt = t;
          this.pingSentAt = null;
          return;
        }
        if (t - this.lastMessageAt > silenceTimeoutMs) {
          end(false, `silent: no message for ${t - this.lastMessageAt} ms`, false);
        } else if (this.pingSentAt !== null && t - this.pingSentAt > silenceTimeoutMs) {
          end(false, `silent: ping unanswered for ${t - this.pingSentAt} ms`, false);
        } else if (heartbeat.kind === 'frame') {
          if (this.pingSentAt === null) sendPing(t);
        } else if (t - this.lastPingAt >= Math.min(heartbeat.intervalMs, silenceTimeoutMs / 3)) {
          // At the venue's interval, and more often when the silence timeout is shorter: a quiet market
          // sends nothing else, so the pong is what proves the socket alive.
          sendPing(t);
        }
      };
      const subscribe = async (): Promise<void> => {
        // Per connection: a new connection starts with a fresh subscribe window.
        const gate = new WindowGate(this.opts.subscribeLimit);
        for (const frame of this.opts.subscribe) {
          if (!(await gate.acquire(stopSending.signal))) return;
          if (ws.readyState !== WebSocket.OPEN) return;
          ws.send(frame);
        }
      };

      ws.on('open', () => {
        const t = Date.now();
        taken.settle(t); // the venue counted the connection during the handshake
        this.lastMessageAt = t;
        this.lastPingAt = t;
        this.pingSentAt = null;
        if (this.pausedByConsumer) ws.pause();
        const every =
          heartbeat.kind === 'frame'
            ? Math.floor(silenceTimeoutMs / 3)
            : Math.min(Math.floor(silenceTimeoutMs / 3), heartbeat.intervalMs);
        timers.push(setInterval(check, Math.max(10, every)));
        timers.push(setTimeout(() => end(true, `rotating after ${rotateAfterMs} ms`, true), rotateAfterMs));
        this.opts.logger.info({ source: venue, socket: label, reconnect }, `${venue} socket open`);
        void subscribe();
        this.hooks.onOpen(reconnect);
      });
      ws.on('message', (data) => {
        this.lastMessageAt = Date.now();
        if (!gotData) {
          gotData = true;
          this.backoff.reset(); // a good cycle
        }
        try {
          const raw = text(data);
          const msg = this.opts.parse(raw);
          if (msg.type === 'pong') {
            this.pingSentAt = null;
            return;
          }
          if (msg.type === 'reconnect') {
            this.opts.logger.warn(
              { source: venue, socket: label, reason: msg.reason },
              `${venue} ${msg.reason}: reconnecting`,
            );
            end(true, msg.reason, true);
          }
          this.hooks.onMessage(msg, raw, reason !== null);
        } catch (err) {
          this.opts.logger.error({ err, source: venue, socket: label }, `${venue} message handler failed`);
        }
      });
      ws.on('pong', () => {
        this.pingSentAt = null;
      });
      ws.on('error', (err) => {
        lastError = err.message;
      });
      ws.on('close', (code, why) => {
        taken.settle(Date.now());
        for (const t of timers) clearTimeout(t);
        stopSending.abort();
        signal.removeEventListener('abort', onAbort);
        if (this.socket === ws) this.socket = null;
        if (this.session === session) this.session = null;
        const said = why.length > 0 ? `, ${why.toString('utf8')}` : '';
        if (reason === null && this.opts.serverCloseIsNotice && code !== 1006) {
          // The venue closed it on purpose and documents no notice before: reconnect at once.
          resolve({ planned: true, reason: `closed by server (code ${code}${said})` });
          return;
        }
        resolve({
          planned,
          reason:
            reason ?? (lastError !== null ? `error: ${lastError}` : `closed by server (code ${code}${said})`),
        });
      });
    });
  }
}
