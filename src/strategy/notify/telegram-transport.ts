/**
 * The Bot API side of the notifier: the token and API-root checks, one grammY `Api` with its own
 * keep-alive agent, and the sorting of a failed `sendMessage` into an error reason. The token never
 * reaches a log line: every text that could hold it goes through `redact`.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Api, GrammyError, HttpError } from 'grammy';
import { ConfigError, errorMessage } from '../../util/errors.js';
import type { ErrorReason } from './metrics.js';

export const DEFAULT_TELEGRAM_API_ROOT = 'https://api.telegram.org';

const TOKEN_KEY = 'TELEGRAM_BOT_TOKEN';
const TOKEN_RE = /^\d+:[A-Za-z0-9_-]+$/;

/** The trimmed bot token; a ConfigError naming `TELEGRAM_BOT_TOKEN` when missing, empty or malformed. */
export function telegramToken(raw: string | undefined): string {
  const token = raw?.trim() ?? '';
  if (token === '') {
    throw new ConfigError(
      TOKEN_KEY,
      'is required when the Telegram notifier mode is telegram (or use log_only)',
    );
  }
  if (!TOKEN_RE.test(token)) {
    throw new ConfigError(TOKEN_KEY, 'does not look like a bot token (<bot id>:<secret>, from @BotFather)');
  }
  return token;
}

/** `raw` without a trailing `/`; a ConfigError unless it is a plain http(s) URL. */
export function validateApiRoot(raw: string): string {
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

export interface TelegramSenderOptions {
  /** Sockets of the keep-alive agent (the notifier's sends in flight at once). */
  readonly concurrency: number;
  /** The caller's own time limit of one send, ms; grammY's timeout is set 1 s above it as a backstop. */
  readonly timeoutMs: number;
}

/** One grammY `Api` with its own keep-alive agent (destroyed by `close()`). */
export class TelegramSender {
  private readonly api: Api;
  private readonly agent: HttpAgent;

  constructor(
    readonly token: string,
    apiRoot: string,
    opts: TelegramSenderOptions,
  ) {
    const agentOpts = { keepAlive: true, maxSockets: opts.concurrency };
    this.agent = apiRoot.startsWith('https:') ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
    this.api = new Api(token, {
      apiRoot,
      // Our own timer aborts first (so a timeout is told apart); grammY's is only a backstop.
      timeoutSeconds: opts.timeoutMs / 1000 + 1,
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

/** Why a send failed, for the error counter and the (redacted) log line. */
export interface SendFailure {
  readonly reason: ErrorReason;
  /** A 429's `retry_after` (1 when the answer has none), s: the chat is paused that long. */
  readonly retryAfterS?: number;
  /** Log fields of the failure. */
  readonly detail: Record<string, unknown>;
}

/** Sort the rejection of `TelegramSender.send` (`timedOut`: the caller's timer aborted it). */
export function sendFailure(err: unknown, token: string, timedOut: boolean, timeoutMs: number): SendFailure {
  if (err instanceof GrammyError) {
    const code = err.error_code;
    const reason: ErrorReason =
      code === 429 ? 'too_many_requests' : code >= 500 ? 'server_error' : 'client_error';
    let retryAfterS: number | undefined;
    if (code === 429) {
      const ra = err.parameters.retry_after;
      retryAfterS = typeof ra === 'number' && Number.isFinite(ra) && ra > 0 ? ra : 1;
    }
    const detail = { code, description: redact(err.description, token), retryAfterS };
    return retryAfterS === undefined ? { reason, detail } : { reason, retryAfterS, detail };
  }
  return {
    reason: timedOut ? 'timeout' : 'network',
    detail: {
      err: redact(
        err instanceof HttpError ? `${err.message}${causeOf(err.error)}` : errorMessage(err),
        token,
      ),
      timeoutMs: timedOut ? timeoutMs : undefined,
    },
  };
}

type GrammySignal = NonNullable<Parameters<Api['sendMessage']>[3]>;

/**
 * grammY types its signal parameter with the `abort-controller` polyfill's class; at run time it only
 * reads `aborted` and calls `addEventListener` / `removeEventListener`, which Node's AbortSignal has.
 */
function toGrammySignal(signal: AbortSignal): GrammySignal {
  return signal as unknown as GrammySignal;
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
