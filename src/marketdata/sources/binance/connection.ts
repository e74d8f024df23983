/**
 * One combined-stream WebSocket of one market (spot or USD-M futures), kept alive: it reconnects with
 * jittered exponential backoff after a loss (reset once a connection delivers data), reconnects at once
 * when asked to rotate (before the 24 h cut, on `serverShutdown`), and drops a silent socket (no message,
 * or an unanswered ping, for `silenceTimeoutMs`). The streams are in the URL, so every new connection
 * subscribes to all of them again. Back-pressure pauses and resumes reading from the socket.
 */
import WebSocket from 'ws';
import { Backoff, type BackoffOptions } from '../../../util/backoff.js';
import { sleep } from '../../../util/sleep.js';
import type { Logger } from '../../../util/log.js';

export interface StreamConnectionOptions {
  /** For reasons and logs, e.g. `spot`. */
  readonly label: string;
  /** Full URL including `/stream?streams=...`. */
  readonly url: string;
  /** See BinanceSourceOptions.silenceTimeoutMs; also the handshake timeout, ms. */
  readonly silenceTimeoutMs: number;
  /** Reconnect proactively after this long connected, ms. */
  readonly rotateAfterMs: number;
  /** Reconnect delays after a failed or silent connection. */
  readonly backoff: BackoffOptions;
  /** Where connection events are logged. */
  readonly logger: Logger;
}

export interface StreamConnectionHooks {
  /** The socket is open. `reconnect`: an earlier connection of this run existed. */
  readonly onOpen: (reconnect: boolean) => void;
  /** A text frame. `closing`: it came on a socket being closed (rotation), after its replacement was asked for. */
  readonly onMessage: (text: string, closing: boolean) => void;
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

export class StreamConnection {
  private socket: WebSocket | null = null;
  private session: Session | null = null;
  private pausedByConsumer = false;
  private readonly backoff: Backoff;
  private lastMessageAt = 0;
  private pingSentAt: number | null = null;
  private attempts = 0;

  constructor(
    private readonly opts: StreamConnectionOptions,
    private readonly hooks: StreamConnectionHooks,
  ) {
    this.backoff = new Backoff(opts.backoff);
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
    let reconnect = false;
    let delay = 0;
    while (!signal.aborted) {
      if (delay > 0) await sleep(delay, signal);
      if (signal.aborted) break;
      let end: { planned: boolean; reason: string };
      try {
        end = await this.connectOnce(signal, reconnect);
      } catch (err) {
        end = {
          planned: false,
          reason: `cannot connect: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
      if (signal.aborted) break;
      delay = end.planned ? 0 : this.backoff.next();
      this.opts.logger.warn(
        { source: 'binance', market: this.opts.label, reason: end.reason, retryInMs: delay },
        'binance socket closed',
      );
      this.hooks.onClosed({ planned: end.planned, reason: end.reason, retryInMs: delay });
      reconnect = true;
    }
  }

  private connectOnce(
    signal: AbortSignal,
    reconnect: boolean,
  ): Promise<{ planned: boolean; reason: string }> {
    const { silenceTimeoutMs, rotateAfterMs } = this.opts;
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

      const end = (isPlanned: boolean, why: string, graceful: boolean): void => {
        if (reason !== null) return; // the first reason wins
        planned = isPlanned;
        reason = why;
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
        } else if (this.pingSentAt === null) {
          this.pingSentAt = t;
          ws.ping();
        }
      };

      ws.on('open', () => {
        this.lastMessageAt = Date.now();
        this.pingSentAt = null;
        if (this.pausedByConsumer) ws.pause();
        timers.push(setInterval(check, Math.max(10, Math.floor(silenceTimeoutMs / 3))));
        timers.push(setTimeout(() => end(true, `rotating after ${rotateAfterMs} ms`, true), rotateAfterMs));
        this.opts.logger.info(
          { source: 'binance', market: this.opts.label, reconnect },
          'binance socket open',
        );
        this.hooks.onOpen(reconnect);
      });
      ws.on('message', (data) => {
        this.lastMessageAt = Date.now();
        if (!gotData) {
          gotData = true;
          this.backoff.reset(); // a good cycle
        }
        try {
          this.hooks.onMessage(text(data), reason !== null);
        } catch (err) {
          this.opts.logger.error({ err, market: this.opts.label }, 'binance message handler failed');
        }
      });
      ws.on('pong', () => {
        this.pingSentAt = null;
      });
      ws.on('error', (err) => {
        lastError = err.message;
      });
      ws.on('close', (code, why) => {
        for (const t of timers) clearTimeout(t);
        signal.removeEventListener('abort', onAbort);
        if (this.socket === ws) this.socket = null;
        if (this.session === session) this.session = null;
        const said = why.length > 0 ? `, ${why.toString('utf8')}` : '';
        resolve({
          planned,
          reason:
            reason ?? (lastError !== null ? `error: ${lastError}` : `closed by server (code ${code}${said})`),
        });
      });
    });
  }
}
