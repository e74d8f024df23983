/**
 * Telegram notices of strategy events (seed 004's best-effort notifier policy, DESIGN.md "Telegram").
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
 * - Modes: `log_only` (the default outside production, and the embedded default of DESIGN.md) runs the
 *   same pipeline but logs the notice instead of sending it; `telegram` sends through the Bot API and
 *   needs `TELEGRAM_BOT_TOKEN` (a ConfigError at creation otherwise: fail fast at start-up).
 * - Repeats of the same `failed` error for the same user and strategy are debounced (policy: 10 minutes).
 * - The bot token never reaches a log line.
 *
 * Metrics (names fixed by seed 004):
 * - `strategy_telegram_notify_total{mode,type}`: notices delivered (`telegram`: the Bot API said ok;
 *   `log_only`: the notice was logged).
 * - `strategy_telegram_notify_errors_total{reason}`: `too_many_requests` (429), `client_error` (other
 *   4xx), `server_error` (5xx), `timeout`, `network` (no HTTP answer, or one that is not the Bot API's
 *   JSON), `chat_lookup` (`chatFor` threw, timed out or returned something that is not a chat id).
 * - `strategy_telegram_notify_skipped_total{reason}`: `no_confirmed_chat`, `rate_limited` (the per-chat
 *   limit), `retry_after` (the chat is paused after a 429), `debounced`, `queue_full`, `closed`.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { performance } from 'node:perf_hooks';
import { Api, GrammyError, HttpError } from 'grammy';
import { Counter, Registry } from 'prom-client';
import {
  ClosedError,
  ConfigError,
  InvalidArgumentError,
  TimeoutError,
  errorMessage,
} from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';

export type NotifyMode = 'log_only' | 'telegram';

/** The event types of `strategy.events.v1.user.<id>` (DESIGN.md). */
export type StrategyEventType = 'started' | 'signal' | 'trade_open' | 'trade_close' | 'failed' | 'stopped';

/** The types that reach Telegram (seed 004's policy); the others are ignored. */
export const NOTIFIED_TYPES: readonly StrategyEventType[] = ['signal', 'trade_open', 'trade_close', 'failed'];

/** A strategy event as the notifier needs it. The optional fields are printed when present. */
export interface NotifyEvent {
  /** Owner of the strategy; `chatFor` turns it into a chat. */
  readonly userId: string;
  readonly type: StrategyEventType;
  readonly strategyId: string;
  readonly runId: string;
  /** e.g. `binance:spot:BTCUSDT`. */
  readonly instrumentKey: string;
  /** The strategy's name as its user knows it. */
  readonly strategyName?: string;
  /** Candle timeframe, e.g. `1m`. */
  readonly timeframe?: string;
  /** `signal`: what the strategy signalled, e.g. `buy` or `MA(20,50) cross up`. */
  readonly signal?: string;
  /** `trade_*` (or `signal`): `long`, `short`, `buy`, `sell`. */
  readonly side?: string;
  /** Signal or fill price, in quote currency (decimal string or number). */
  readonly price?: string | number;
  /** Trade size, in base units. */
  readonly quantity?: string | number;
  /** `trade_close`: realised profit or loss, in quote currency. */
  readonly pnl?: string | number;
  /** `trade_close`: realised profit or loss, in percent of the entry. */
  readonly pnlPct?: string | number;
  /** `failed`: what went wrong (people-readable; long texts are cut). */
  readonly error?: string;
}

export interface TelegramNotifierOptions {
  /**
   * `log_only` logs each notice (info level) instead of sending it; `telegram` sends it with the Bot
   * API. Default: `defaultNotifyMode()` (`telegram` only when `NODE_ENV=production`).
   */
  readonly mode?: NotifyMode;
  /**
   * The bot's token (`123456:ABC...`), usually `process.env.TELEGRAM_BOT_TOKEN`. Required in `telegram`
   * mode: missing, empty or malformed is a ConfigError naming `TELEGRAM_BOT_TOKEN`. Ignored in `log_only`.
   */
  readonly botToken?: string;
  /**
   * Root URL of the Bot API server, without the `/bot<token>` part. Default `https://api.telegram.org`;
   * a local Bot API server or a test fake otherwise. A trailing `/` is removed.
   */
  readonly apiRoot?: string;
  /**
   * The CONFIRMED chat of a user (`identity_telegram_channels` with `is_confirmed = true`; with several,
   * the most recently confirmed), or `null` when there is none. Called by the worker, never by
   * `notify()`; bounded by `timeoutMs`. A throw counts as an error (`chat_lookup`), not as a skip.
   */
  readonly chatFor: (userId: string) => Promise<number | null>;
  /**
   * Most notices per chat in any 60-second window; more are skipped (`rate_limited`). Default 20
   * (Telegram asks for at most about 1 message per second per chat and 20 per minute in a group).
   * Attempts count, whether they succeed or not.
   */
  readonly perChatPerMinute?: number;
  /** Most notices waiting for the worker; when full, new ones are skipped (`queue_full`). Default 1000. */
  readonly queueCapacity?: number;
  /** Time limit of one `sendMessage` call and of one `chatFor` lookup, ms. Default 5000. */
  readonly timeoutMs?: number;
  /**
   * Sends in flight at once. Notices of one user are still sent one at a time, in order. Default 4.
   */
  readonly concurrency?: number;
  /**
   * Window in which a `failed` notice with the same user, strategy and error text as an earlier one is
   * skipped (`debounced`), ms. Default 600000 (10 minutes, seed 004's policy); 0 turns it off.
   */
  readonly failedDebounceMs?: number;
  /**
   * How long `close()` keeps sending what is queued before it aborts the sends in flight and drops the
   * rest (`closed`), ms. Default 2000. `close()` returns within about this bound plus 100 ms.
   */
  readonly closeTimeoutMs?: number;
  /** Registry of the three metrics. Default: a private one. Several notifiers may share one registry. */
  readonly registry?: Registry;
  /** Default: silent. Notices in `log_only` mode are logged at info level. */
  readonly log?: Logger;
}

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

export const DEFAULT_TELEGRAM_API_ROOT = 'https://api.telegram.org';
/** The Bot API's limit for a text message, characters. */
export const TELEGRAM_TEXT_MAX = 4096;

const TOKEN_KEY = 'TELEGRAM_BOT_TOKEN';
const TOKEN_RE = /^\d+:[A-Za-z0-9_-]+$/;
const WINDOW_MS = 60_000;
const SWEEP_EVERY_MS = 60_000;
const NO_CHAT_LOG_EVERY_MS = 600_000;
const ERROR_LOG_EVERY_MS = 10_000;
const CLOSE_SETTLE_MS = 100;
const ERROR_TEXT_MAX = 500;
const FIELD_MAX = 120;

type ErrorReason =
  'too_many_requests' | 'client_error' | 'server_error' | 'timeout' | 'network' | 'chat_lookup';
type SkipReason =
  'no_confirmed_chat' | 'rate_limited' | 'retry_after' | 'debounced' | 'queue_full' | 'closed';

const ERROR_REASONS: readonly ErrorReason[] = [
  'too_many_requests',
  'client_error',
  'server_error',
  'timeout',
  'network',
  'chat_lookup',
];
const SKIP_REASONS: readonly SkipReason[] = [
  'no_confirmed_chat',
  'rate_limited',
  'retry_after',
  'debounced',
  'queue_full',
  'closed',
];
const NOTIFIED: ReadonlySet<string> = new Set<string>(NOTIFIED_TYPES);

/** `telegram` when `NODE_ENV=production`, else `log_only` (DESIGN.md: log-only is the embedded default). */
export function defaultNotifyMode(env: NodeJS.ProcessEnv = process.env): NotifyMode {
  return env.NODE_ENV === 'production' ? 'telegram' : 'log_only';
}

/** Create the notifier (no I/O yet). Throws ConfigError for bad options, e.g. `telegram` without a token. */
export function createTelegramNotifier(opts: TelegramNotifierOptions): TelegramNotifier {
  const mode = opts.mode ?? defaultNotifyMode();
  if (mode !== 'log_only' && mode !== 'telegram') {
    throw new ConfigError('telegram.mode', `expected log_only or telegram, got ${JSON.stringify(mode)}`);
  }
  const settings: Settings = {
    mode,
    perChatPerMinute: intAtLeast(opts.perChatPerMinute ?? 20, 1, 'telegram.perChatPerMinute'),
    queueCapacity: intAtLeast(opts.queueCapacity ?? 1000, 1, 'telegram.queueCapacity'),
    timeoutMs: intAtLeast(opts.timeoutMs ?? 5000, 1, 'telegram.timeoutMs'),
    concurrency: intAtLeast(opts.concurrency ?? 4, 1, 'telegram.concurrency'),
    failedDebounceMs: intAtLeast(opts.failedDebounceMs ?? 600_000, 0, 'telegram.failedDebounceMs'),
    closeTimeoutMs: intAtLeast(opts.closeTimeoutMs ?? 2000, 0, 'telegram.closeTimeoutMs'),
  };
  const apiRoot = validateApiRoot(opts.apiRoot ?? DEFAULT_TELEGRAM_API_ROOT);
  let sender: Sender | null = null;
  if (mode === 'telegram') {
    const token = opts.botToken?.trim() ?? '';
    if (token === '') {
      throw new ConfigError(
        TOKEN_KEY,
        'is required when the Telegram notifier mode is telegram (or use log_only)',
      );
    }
    if (!TOKEN_RE.test(token)) {
      throw new ConfigError(TOKEN_KEY, 'does not look like a bot token (<bot id>:<secret>, from @BotFather)');
    }
    sender = new Sender(token, apiRoot, settings);
  }
  const metrics = notifyMetrics(opts.registry ?? new Registry(), mode);
  return new Notifier(settings, sender, opts.chatFor, metrics, opts.log ?? silentLogger);
}

/**
 * The plain-text notice of `event` (seed 004: short, stable, no Markdown), at most 4096 characters, e.g.
 * `TRADE CLOSE | strategy=MA cross | strategy_id=s1 | run_id=r1 | instrument=binance:spot:BTCUSDT |
 * side=long | price=43100.5 | pnl=+12.3 (+1.2%)`.
 */
export function formatNotice(event: NotifyEvent): string {
  const parts: string[] = [event.type.replace('_', ' ').toUpperCase()];
  const add = (name: string, value: string | number | undefined, max = FIELD_MAX): void => {
    const v = clean(value, max);
    if (v !== '') parts.push(`${name}=${v}`);
  };
  add('strategy', event.strategyName);
  add('strategy_id', event.strategyId);
  add('run_id', event.runId);
  add('instrument', event.instrumentKey);
  add('timeframe', event.timeframe);
  if (event.type === 'signal') add('signal', event.signal);
  if (event.type !== 'failed') {
    add('side', event.side);
    add('price', event.price);
    add('qty', event.quantity);
  }
  if (event.type === 'trade_close' && event.pnl !== undefined) {
    const pct = event.pnlPct !== undefined ? ` (${signed(event.pnlPct)}%)` : '';
    add('pnl', `${signed(event.pnl)}${pct}`);
  }
  if (event.type === 'failed') add('error', event.error ?? 'unknown error', ERROR_TEXT_MAX);
  const text = parts.join(' | ');
  return text.length <= TELEGRAM_TEXT_MAX ? text : `${text.slice(0, TELEGRAM_TEXT_MAX - 1)}…`;
}

function clean(value: string | number | undefined, max: number): string {
  if (value === undefined) return '';
  const s = (typeof value === 'number' ? String(value) : value).replace(/\s+/g, ' ').trim();
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function signed(v: string | number): string {
  const s = String(v).trim();
  return s !== '' && !s.startsWith('-') && !s.startsWith('+') && Number(s) > 0 ? `+${s}` : s;
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

function validateApiRoot(raw: string): string {
  const key = 'telegram.apiRoot';
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(key, `not a URL: ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ConfigError(key, `scheme must be http:// or https://, got ${u.protocol}//`);
  }
  if (u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') {
    throw new ConfigError(key, 'credentials, query strings and fragments are not supported');
  }
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

interface NotifyMetrics {
  readonly sent: Counter<'mode' | 'type'>;
  readonly errors: Counter<'reason'>;
  readonly skipped: Counter<'reason'>;
}

function notifyMetrics(registry: Registry, mode: NotifyMode): NotifyMetrics {
  const m: NotifyMetrics = {
    sent: counter(
      registry,
      'strategy_telegram_notify_total',
      'Strategy notices delivered (telegram: sent; log_only: logged)',
      ['mode', 'type'],
    ),
    errors: counter(
      registry,
      'strategy_telegram_notify_errors_total',
      'Strategy notices that failed (Bot API error, timeout, network, chat lookup)',
      ['reason'],
    ),
    skipped: counter(
      registry,
      'strategy_telegram_notify_skipped_total',
      'Strategy notices not sent by policy (no confirmed chat, rate limit, retry_after, debounce, queue full, closed)',
      ['reason'],
    ),
  };
  // Every series exists from the start (at 0), so dashboards and rate() see them before the first event.
  for (const type of NOTIFIED_TYPES) m.sent.inc({ mode, type }, 0);
  for (const reason of ERROR_REASONS) m.errors.inc({ reason }, 0);
  for (const reason of SKIP_REASONS) m.skipped.inc({ reason }, 0);
  return m;
}

function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

/** The Bot API side: one grammY `Api` with its own keep-alive agent (destroyed by `close()`). */
class Sender {
  private readonly api: Api;
  private readonly agent: HttpAgent;

  constructor(
    readonly token: string,
    apiRoot: string,
    private readonly settings: Settings,
  ) {
    const opts = { keepAlive: true, maxSockets: settings.concurrency };
    this.agent = apiRoot.startsWith('https:') ? new HttpsAgent(opts) : new HttpAgent(opts);
    this.api = new Api(token, {
      apiRoot,
      // Our own timer aborts first (so a timeout is told apart); grammY's is only a backstop.
      timeoutSeconds: settings.timeoutMs / 1000 + 1,
      baseFetchConfig: { agent: this.agent, compress: true },
    });
  }

  /** Send `text`; rejects with grammY's GrammyError / HttpError, or aborts when `signal` fires. */
  async send(chatId: number, text: string, signal: AbortSignal): Promise<void> {
    const other = { link_preview_options: { is_disabled: true } };
    await this.api.sendMessage(chatId, text, other, toGrammySignal(signal));
  }

  close(): void {
    this.agent.destroy();
  }
}

type GrammySignal = NonNullable<Parameters<Api['sendMessage']>[3]>;

/**
 * grammY types its signal parameter with the `abort-controller` polyfill's class; at run time it only
 * reads `aborted` and calls `addEventListener` / `removeEventListener`, which Node's AbortSignal has.
 */
function toGrammySignal(signal: AbortSignal): GrammySignal {
  return signal as unknown as GrammySignal;
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
  /** Per chat: times (performance.now) of the attempts in the last minute, oldest first. */
  private readonly windows = new Map<number, number[]>();
  /** Per chat: paused until (performance.now), after a 429's `retry_after`. */
  private readonly pausedUntil = new Map<number, number>();
  /** `failed` debounce: key -> time of the last notice. */
  private readonly lastFailed = new Map<string, number>();
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
    private readonly sender: Sender | null,
    private readonly chatFor: (userId: string) => Promise<number | null>,
    private readonly metrics: NotifyMetrics,
    private readonly log: Logger,
  ) {}

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
      if (event.type === 'failed' && this.debounced(event, now)) {
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
    const paused = this.pausedUntil.get(chatId);
    if (paused !== undefined && paused > now) {
      this.skip('retry_after');
      return;
    }
    if (!this.takeSlot(chatId, now)) {
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
    sender: Sender,
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
      if (err instanceof GrammyError) {
        const code = err.error_code;
        const reason: ErrorReason =
          code === 429 ? 'too_many_requests' : code >= 500 ? 'server_error' : 'client_error';
        let retryAfterS: number | undefined;
        if (code === 429) {
          const ra = err.parameters.retry_after;
          retryAfterS = typeof ra === 'number' && Number.isFinite(ra) && ra > 0 ? ra : 1;
          this.pausedUntil.set(chatId, performance.now() + retryAfterS * 1000);
        }
        this.fail(reason, {
          ...fields,
          code,
          description: redact(err.description, sender.token),
          retryAfterS,
        });
        return;
      }
      const reason: ErrorReason = timedOut ? 'timeout' : 'network';
      this.fail(reason, {
        ...fields,
        err: redact(
          err instanceof HttpError ? `${err.message}${causeOf(err.error)}` : errorMessage(err),
          sender.token,
        ),
        timeoutMs: timedOut ? this.settings.timeoutMs : undefined,
      });
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

  private takeSlot(chatId: number, now: number): boolean {
    let w = this.windows.get(chatId);
    if (w === undefined) {
      w = [];
      this.windows.set(chatId, w);
    }
    while (w.length > 0 && (w[0] ?? now) <= now - WINDOW_MS) w.shift();
    if (w.length >= this.settings.perChatPerMinute) return false;
    w.push(now);
    return true;
  }

  private debounced(event: NotifyEvent, now: number): boolean {
    if (this.settings.failedDebounceMs === 0) return false;
    const errorText = (event.error ?? '').replace(/\s+/g, ' ').trim();
    const key = `${event.userId}\u0000${event.strategyId}\u0000${errorText}`;
    const last = this.lastFailed.get(key);
    if (last !== undefined && now - last < this.settings.failedDebounceMs) return true;
    this.lastFailed.set(key, now);
    return false;
  }

  /** Forget windows, pauses, debounce keys and log marks that have expired (bounded memory). */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [chat, w] of this.windows) {
      const last = w[w.length - 1];
      if (last === undefined || last <= now - WINDOW_MS) this.windows.delete(chat);
    }
    for (const [chat, until] of this.pausedUntil) if (until <= now) this.pausedUntil.delete(chat);
    for (const [key, at] of this.lastFailed) {
      if (now - at >= this.settings.failedDebounceMs) this.lastFailed.delete(key);
    }
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

function noticeFields(event: NotifyEvent, chatId: number): Record<string, string | number> {
  return { chatId, userId: event.userId, type: event.type, strategyId: event.strategyId, runId: event.runId };
}

/** `(ECONNREFUSED)` and the like from the fetch error grammY wraps; never its message (it has the URL). */
function causeOf(err: unknown): string {
  if (typeof err !== 'object' || err === null) return '';
  const code = (err as { code?: unknown }).code;
  const type = (err as { type?: unknown }).type;
  const name = (err as { name?: unknown }).name;
  const what =
    typeof code === 'string' ? code : typeof type === 'string' ? type : typeof name === 'string' ? name : '';
  return what !== '' ? ` (${what})` : '';
}

function redact(s: string, token: string): string {
  return token === '' ? s : s.split(token).join('<token>');
}
