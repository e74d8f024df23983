/**
 * Telegram notices of strategy events (a best-effort notifier).
 *
 * - Only `signal`, `trade_open`, `trade_close` and `failed` are notified; `started` and `stopped` are
 *   ignored without counting.
 * - Only users with a CONFIRMED chat binding get a notice: `chatFor(userId)` is the caller's lookup of
 *   `identity_telegram_channels` (`is_confirmed = true`); `null` means none, and the notice is skipped,
 *   counted and logged (at most once per user per 10 minutes).
 * - Best effort: `notify()` only puts the event in a bounded in-memory queue and returns; it never waits
 *   for the network and never throws. A background worker resolves the chat, applies the per-chat rate
 *   limit and the `retry_after` pause, formats a short plain-text message and sends it with grammY's
 *   `sendMessage`. Nothing is retried: a failed send is counted, logged and dropped, so a Telegram outage
 *   costs notices, never runner time.
 * - Modes: `log_only` (the default outside production) runs the
 *   same pipeline but logs the notice instead of sending it; `telegram` sends through the Bot API and
 *   needs `TELEGRAM_BOT_TOKEN` (a ConfigError at creation otherwise: fail fast at start-up).
 * - Repeats of the same `failed` error for the same user and strategy are debounced (policy: 10 minutes).
 * - The bot token never reaches a log line.
 *
 * The pieces: `event.ts` (modes, the event, the notified types), `format.ts` (the notice text),
 * `metrics.ts` (the three counters and their reasons), `rate-limit.ts` (per-chat limit, `retry_after`
 * pause, `failed` debounce), `telegram-transport.ts` (token, Bot API, error sorting); this file is the
 * queue and the worker that ties them together.
 */
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import {
  ClosedError,
  ConfigError,
  errorMessage,
  InvalidArgumentError,
  TimeoutError,
} from '../../util/errors.js';
import { withDefaults } from '../../util/defaults.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { NOTIFIED_TYPES, type NotifyEvent, type NotifyMode } from './event.js';
import { formatNotice, noticeFields } from './format.js';
import { notifyMetrics, type ErrorReason, type NotifyMetrics, type SkipReason } from './metrics.js';
import { NoticePolicy } from './rate-limit.js';
import {
  DEFAULT_TELEGRAM_API_ROOT,
  sendFailure,
  telegramToken,
  TelegramSender,
  validateApiRoot,
} from './telegram-transport.js';

export interface TelegramNotifierOptions {
  /**
   * `log_only` logs each notice (info level) instead of sending it; `telegram` sends it with the Bot
   * API.
   * @defaultValue computed by `defaultNotifyMode()` (`telegram` only when `NODE_ENV=production`)
   */
  readonly mode?: NotifyMode | undefined;
  /**
   * The bot's token (`123456:ABC...`), usually `process.env.TELEGRAM_BOT_TOKEN`. Required in `telegram`
   * mode: missing, empty or malformed is a ConfigError naming `TELEGRAM_BOT_TOKEN`. Ignored in `log_only`.
   * @defaultValue none
   */
  readonly botToken?: string | undefined;
  /**
   * Root URL of the Bot API server, without the `/bot<token>` part: a local Bot API server or a test
   * fake otherwise. A trailing `/` is removed.
   * @defaultValue `https://api.telegram.org`
   */
  readonly apiRoot?: string | undefined;
  /**
   * The CONFIRMED chat of a user (`identity_telegram_channels` with `is_confirmed = true`; with several,
   * the most recently confirmed), or `null` when there is none. Called by the worker, never by
   * `notify()`; bounded by `timeoutMs`. A throw counts as an error (`chat_lookup`), not as a skip.
   */
  readonly chatFor: (userId: string) => Promise<number | null>;
  /**
   * Most notices per chat in any 60-second window, notices; more are skipped (`rate_limited`)
   * (Telegram asks for at most about 1 message per second per chat and 20 per minute in a group).
   * Attempts count, whether they succeed or not.
   * @defaultValue 20
   */
  readonly perChatPerMinute?: number | undefined;
  /**
   * Most notices waiting for the worker, entries; when full, new ones are skipped (`queue_full`).
   * @defaultValue 1000
   */
  readonly queueCapacity?: number | undefined;
  /**
   * Time limit of one `sendMessage` call and of one `chatFor` lookup, ms.
   * @defaultValue 5000
   */
  readonly timeoutMs?: number | undefined;
  /**
   * Sends in flight at once, sends. Notices of one user are still sent one at a time, in order.
   * @defaultValue 4
   */
  readonly concurrency?: number | undefined;
  /**
   * Window in which a `failed` notice with the same user, strategy and error text as an earlier one is
   * skipped (`debounced`), ms (600000 is 10 minutes); 0 turns it off.
   * @defaultValue 600000
   */
  readonly failedDebounceMs?: number | undefined;
  /**
   * How long `close()` keeps sending what is queued before it aborts the sends in flight and drops the
   * rest (`closed`), ms. `close()` returns within about this bound plus 100 ms.
   * @defaultValue 2000
   */
  readonly closeTimeoutMs?: number | undefined;
  /**
   * Registry of the three metrics. Several notifiers may share one registry.
   * @defaultValue a private one
   */
  readonly registry?: Registry | undefined;
  /**
   * Where errors go; notices in `log_only` mode are logged at info level.
   * @defaultValue `silentLogger`
   */
  readonly log?: Logger | undefined;
}

/** The defaults of {@link TelegramNotifierOptions}, applied by `createTelegramNotifier`. */
export const TELEGRAM_NOTIFIER_DEFAULTS = Object.freeze({
  apiRoot: DEFAULT_TELEGRAM_API_ROOT,
  perChatPerMinute: 20,
  queueCapacity: 1000,
  timeoutMs: 5000,
  concurrency: 4,
  failedDebounceMs: 600_000,
  closeTimeoutMs: 2000,
  log: silentLogger,
} satisfies Partial<TelegramNotifierOptions>);

export interface TelegramNotifier {
  readonly mode: NotifyMode;
  /**
   * Queue a notice of `event` when its type is notified. Returns at once: never waits for the network,
   * never throws. After `close()` the notice is skipped (`closed`).
   */
  notify(event: NotifyEvent): void;
  /** Notices queued or being handled. */
  readonly pending: number;
  /**
   * Stop taking notices, keep sending the queued ones for at most `closeTimeoutMs`, then abort what is in
   * flight and drop the rest. Idempotent; every call returns the same promise; never rejects.
   */
  close(): Promise<void>;
}

const SWEEP_EVERY_MS = 60_000;
const NO_CHAT_LOG_EVERY_MS = 600_000;
const ERROR_LOG_EVERY_MS = 10_000;
const CLOSE_SETTLE_MS = 100;
const NOTIFIED: ReadonlySet<string> = new Set<string>(NOTIFIED_TYPES);

/** `telegram` when `NODE_ENV=production`, else `log_only` (log-only is the embedded default). */
export function defaultNotifyMode(env: NodeJS.ProcessEnv = process.env): NotifyMode {
  return env['NODE_ENV'] === 'production' ? 'telegram' : 'log_only';
}

/** Create the notifier (no I/O yet). Throws ConfigError for bad options, e.g. `telegram` without a token. */
export function createTelegramNotifier(options: TelegramNotifierOptions): TelegramNotifier {
  const opts = withDefaults(TELEGRAM_NOTIFIER_DEFAULTS, options);
  const mode = opts.mode ?? defaultNotifyMode();
  if (mode !== 'log_only' && mode !== 'telegram') {
    throw new ConfigError('telegram.mode', `expected log_only or telegram, got ${JSON.stringify(mode)}`);
  }
  const settings: Settings = {
    mode,
    perChatPerMinute: intAtLeast(opts.perChatPerMinute, 1, 'telegram.perChatPerMinute'),
    queueCapacity: intAtLeast(opts.queueCapacity, 1, 'telegram.queueCapacity'),
    timeoutMs: intAtLeast(opts.timeoutMs, 1, 'telegram.timeoutMs'),
    concurrency: intAtLeast(opts.concurrency, 1, 'telegram.concurrency'),
    failedDebounceMs: intAtLeast(opts.failedDebounceMs, 0, 'telegram.failedDebounceMs'),
    closeTimeoutMs: intAtLeast(opts.closeTimeoutMs, 0, 'telegram.closeTimeoutMs'),
  };
  const apiRoot = validateApiRoot(opts.apiRoot);
  const sender =
    mode === 'telegram' ? new TelegramSender(telegramToken(opts.botToken), apiRoot, settings) : null;
  const metrics = notifyMetrics(opts.registry ?? new Registry(), mode);
  return new Notifier(settings, sender, opts.chatFor, metrics, opts.log);
}

interface Settings {
  readonly mode: NotifyMode;
  readonly perChatPerMinute: number;
  readonly queueCapacity: number;
  readonly timeoutMs: number;
  readonly concurrency: number;
  readonly failedDebounceMs: number;
  readonly closeTimeoutMs: number;
}

function intAtLeast(v: number, min: number, key: string): number {
  if (!Number.isSafeInteger(v) || v < min)
    throw new ConfigError(key, `expected an integer >= ${min}, got ${v}`);
  return v;
}

interface Job {
  readonly event: NotifyEvent;
}

/** One job being handled; `abort` ends its lookup or send when `close()` runs out of time. */
interface Running {
  readonly userId: string;
  readonly controller: AbortController;
}

class Notifier implements TelegramNotifier {
  private readonly queue: Job[] = [];
  private readonly running = new Set<Running>();
  private readonly busyUsers = new Set<string>();
  private readonly policy: NoticePolicy;
  /** Log throttle: key -> [last logged at, suppressed since]. */
  private readonly logged = new Map<string, [number, number]>();
  private idleWaiters: (() => void)[] = [];
  private pumpScheduled = false;
  private lastSweep = performance.now();
  private accepting = true;
  /** Set when `close()` has run out of time: nothing more is sent. */
  private stopped = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly settings: Settings,
    private readonly sender: TelegramSender | null,
    private readonly chatFor: (userId: string) => Promise<number | null>,
    private readonly metrics: NotifyMetrics,
    private readonly log: Logger,
  ) {
    this.policy = new NoticePolicy(settings.perChatPerMinute, settings.failedDebounceMs);
  }

  get mode(): NotifyMode {
    return this.settings.mode;
  }

  get pending(): number {
    return this.queue.length + this.running.size;
  }

  notify(event: NotifyEvent): void {
    try {
      if (!NOTIFIED.has(event.type)) return;
      if (!this.accepting) {
        this.skip('closed');
        return;
      }
      const now = performance.now();
      if (now - this.lastSweep >= SWEEP_EVERY_MS) this.sweep(now);
      if (event.type === 'failed' && this.policy.debounced(event, now)) {
        this.skip('debounced');
        return;
      }
      if (this.queue.length >= this.settings.queueCapacity) {
        this.skip('queue_full');
        this.throttledWarn(
          'queue_full',
          now,
          ERROR_LOG_EVERY_MS,
          { capacity: this.settings.queueCapacity },
          'telegram notice queue full; notice dropped',
        );
        return;
      }
      this.queue.push({ event });
      this.schedulePump();
    } catch (err) {
      // Never reached with well-typed events; a notifier must not break its caller either way.
      this.log.warn({ err: errorMessage(err) }, 'telegram notify failed');
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.accepting = false;
    await this.idleWithin(this.settings.closeTimeoutMs);
    this.stopped = true;
    for (let i = 0; i < this.queue.length; i += 1) this.skip('closed');
    this.queue.length = 0;
    for (const r of this.running) r.controller.abort();
    await this.idleWithin(CLOSE_SETTLE_MS);
    this.sender?.close();
  }

  private idleWithin(ms: number): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.idleWaiters.push(done);
    });
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // Not synchronously: notify() must not run chatFor or anything else of the worker.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Start jobs while there is room, taking the first queued job of a user with nothing in flight. */
  private pump(): void {
    while (!this.stopped && this.running.size < this.settings.concurrency) {
      const i = this.queue.findIndex((j) => !this.busyUsers.has(j.event.userId));
      if (i < 0) break;
      const [job] = this.queue.splice(i, 1);
      if (job === undefined) break;
      const running: Running = { userId: job.event.userId, controller: new AbortController() };
      this.running.add(running);
      this.busyUsers.add(running.userId);
      void this.handle(job.event, running.controller.signal)
        .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'telegram notice failed'))
        .finally(() => {
          this.running.delete(running);
          this.busyUsers.delete(running.userId);
          if (this.pending === 0) for (const w of [...this.idleWaiters]) w();
          this.pump();
        });
    }
  }

  private async handle(event: NotifyEvent, signal: AbortSignal): Promise<void> {
    let chatId: number | null;
    try {
      chatId = await this.lookup(event.userId, signal);
    } catch (err) {
      if (signal.aborted) {
        this.skip('closed');
        return;
      }
      this.fail('chat_lookup', { userId: event.userId, err: errorMessage(err) });
      return;
    }
    if (this.stopped) {
      this.skip('closed');
      return;
    }
    const now = performance.now();
    if (chatId === null) {
      this.skip('no_confirmed_chat');
      this.throttledWarn(
        `no_chat:${event.userId}`,
        now,
        NO_CHAT_LOG_EVERY_MS,
        { userId: event.userId, type: event.type, strategyId: event.strategyId },
        'telegram notice skipped: the user has no confirmed chat binding (identity_telegram_channels.is_confirmed)',
      );
      return;
    }
    if (this.policy.paused(chatId, now)) {
      this.skip('retry_after');
      return;
    }
    if (!this.policy.takeSlot(chatId, now)) {
      this.skip('rate_limited');
      this.throttledWarn(
        `rate:${chatId}`,
        now,
        ERROR_LOG_EVERY_MS,
        { chatId, perMinute: this.settings.perChatPerMinute },
        'telegram notice skipped: per-chat rate limit',
      );
      return;
    }
    const text = formatNotice(event);
    if (this.sender === null) {
      this.log.info({ ...noticeFields(event, chatId), text }, 'telegram notice (log_only)');
      this.metrics.sent.inc({ mode: this.settings.mode, type: event.type });
      return;
    }
    await this.send(this.sender, chatId, text, event, signal);
  }

  private async send(
    sender: TelegramSender,
    chatId: number,
    text: string,
    event: NotifyEvent,
    closeSignal: AbortSignal,
  ): Promise<void> {
    const fields = noticeFields(event, chatId);
    if (closeSignal.aborted) {
      this.skip('closed');
      return;
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.settings.timeoutMs);
    const onClose = (): void => controller.abort();
    closeSignal.addEventListener('abort', onClose, { once: true });
    try {
      await sender.send(chatId, text, controller.signal);
      this.metrics.sent.inc({ mode: this.settings.mode, type: event.type });
      this.log.debug(fields, 'telegram notice sent');
    } catch (err) {
      if (closeSignal.aborted && !timedOut) {
        this.skip('closed');
        return;
      }
      const failure = sendFailure(err, sender.token, timedOut, this.settings.timeoutMs);
      if (failure.retryAfterS !== undefined)
        this.policy.pause(chatId, performance.now(), failure.retryAfterS);
      this.fail(failure.reason, { ...fields, ...failure.detail });
    } finally {
      clearTimeout(timer);
      closeSignal.removeEventListener('abort', onClose);
    }
  }

  /** `chatFor`, bounded by `timeoutMs` and by `close()`. */
  private lookup(userId: string, signal: AbortSignal): Promise<number | null> {
    return new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new TimeoutError('chat lookup', this.settings.timeoutMs));
      }, this.settings.timeoutMs);
      const onAbort = (): void => {
        cleanup();
        reject(new ClosedError('notifier'));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      let p: Promise<number | null>;
      try {
        p = this.chatFor(userId);
      } catch (err) {
        cleanup();
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      p.then(
        (chat) => {
          cleanup();
          if (chat === null || Number.isSafeInteger(chat)) resolve(chat);
          else
            reject(
              new InvalidArgumentError('chatFor', `returned ${JSON.stringify(chat)}, not a chat id or null`),
            );
        },
        (err: unknown) => {
          cleanup();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    this.policy.sweep(now);
    for (const [key, [at]] of this.logged) if (now - at >= NO_CHAT_LOG_EVERY_MS) this.logged.delete(key);
  }

  private skip(reason: SkipReason): void {
    this.metrics.skipped.inc({ reason });
  }

  private fail(reason: ErrorReason, fields: Record<string, unknown>): void {
    this.metrics.errors.inc({ reason });
    this.throttledWarn(
      `error:${reason}`,
      performance.now(),
      ERROR_LOG_EVERY_MS,
      { reason, ...fields },
      'telegram notice failed',
    );
  }

  /** Warn at most once per `everyMs` per key, telling how many were suppressed in between. */
  private throttledWarn(
    key: string,
    now: number,
    everyMs: number,
    fields: Record<string, unknown>,
    msg: string,
  ): void {
    const mark = this.logged.get(key);
    if (mark !== undefined && now - mark[0] < everyMs) {
      mark[1] += 1;
      return;
    }
    const suppressed = mark?.[1] ?? 0;
    this.logged.set(key, [now, 0]);
    this.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }
}
