/**
 * A local fake of the Telegram Bot API on 127.0.0.1 (a free port), speaking its documented format:
 * requests to `/bot<token>/<method>` (method names case-insensitive) by GET with a query string or POST
 * with a JSON or `application/x-www-form-urlencoded` body; every answer is JSON, `{"ok":true,"result":...}`
 * or `{"ok":false,"error_code":<n>,"description":"..."[,"parameters":{"retry_after":<s>}]}` with the
 * HTTP status equal to `error_code`. `sendMessage` checks `chat_id` and `text` (1-4096 characters) and
 * answers a text Message (`message_id`, `date`, `chat`, `from`, `text`); `getMe` answers the bot user.
 * A wrong token is a 401, an unknown method a 404. (multipart/form-data, used only for file uploads, is
 * answered 400.)
 *
 * Test controls: one-shot replies (`queueReply`) and a standing behaviour (`behaviour`) that answer a
 * Bot API error (e.g. 429 with `retry_after`, 500), a raw non-JSON answer, or hang (never answer until
 * `close()` or the client gives up). Every request is recorded, successful messages in `messages`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const FAKE_BOT_TOKEN = '123456789:TEST-fake_token-AbCdEf';

export interface FakeTelegramRequest {
  /** Method as called, e.g. `sendMessage`. */
  readonly method: string;
  readonly httpMethod: string;
  readonly contentType: string;
  /** Parameters from the query string and the body (JSON values as they were; form values as strings). */
  readonly params: Readonly<Record<string, unknown>>;
  /** Real time of arrival, epoch ms. */
  readonly at: number;
}

export interface FakeTelegramMessage {
  readonly messageId: number;
  readonly chatId: number | string;
  readonly text: string;
  readonly params: Readonly<Record<string, unknown>>;
}

/** What the fake answers instead of the normal reply. */
export type FakeTelegramReply =
  /** A Bot API error: HTTP status and `error_code` = `code`; `retryAfter` (s) goes into `parameters`. */
  | {
      readonly kind: 'error';
      readonly code: number;
      readonly description: string;
      readonly retryAfter?: number;
    }
  /** Anything, e.g. a proxy's HTML 502. */
  | { readonly kind: 'raw'; readonly status: number; readonly body: string; readonly contentType?: string }
  /** Never answer (the connection stays open until the client aborts or the fake closes). */
  | { readonly kind: 'hang' };

/** The Bot API's flood-control answer. */
export function tooManyRequests(retryAfter: number): FakeTelegramReply {
  return {
    kind: 'error',
    code: 429,
    description: `Too Many Requests: retry after ${retryAfter}`,
    retryAfter,
  };
}

export const INTERNAL_SERVER_ERROR: FakeTelegramReply = {
  kind: 'error',
  code: 500,
  description: 'Internal Server Error',
};

export const HANG: FakeTelegramReply = { kind: 'hang' };

const BOT_USER = {
  id: 123456789,
  is_bot: true,
  first_name: 'marketbus test',
  username: 'marketbus_test_bot',
};

export class FakeTelegram {
  readonly requests: FakeTelegramRequest[] = [];
  readonly messages: FakeTelegramMessage[] = [];
  /** Answer every request so while set (after the one-shot replies are used up). */
  behaviour: FakeTelegramReply | null = null;
  private readonly canned: FakeTelegramReply[] = [];
  private readonly hanging = new Set<ServerResponse>();
  private nextMessageId = 1;
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly token: string,
  ) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.onRequest(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  }

  static async start(opts: { readonly token?: string } = {}): Promise<FakeTelegram> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new FakeTelegram(server, opts.token ?? FAKE_BOT_TOKEN);
  }

  /** The `apiRoot` for grammY (no trailing slash). */
  get apiRoot(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests waiting for an answer that will not come (`hang`). */
  get hangingCount(): number {
    return this.hanging.size;
  }

  /** The next requests get these replies, in order. */
  queueReply(...replies: FakeTelegramReply[]): void {
    this.canned.push(...replies);
  }

  async waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`fake telegram: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    const body = await readBody(req);
    if (match === null) {
      send(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      return;
    }
    const [, token = '', method = ''] = match;
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
    if (body.length > 0) {
      if (contentType === 'application/json') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          send(res, 400, { ok: false, error_code: 400, description: "Bad Request: can't parse JSON object" });
          return;
        }
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
          Object.assign(params, parsed);
      } else if (contentType === 'application/x-www-form-urlencoded') {
        Object.assign(params, Object.fromEntries(new URLSearchParams(body.toString('utf8'))));
      } else {
        send(res, 400, {
          ok: false,
          error_code: 400,
          description: `Bad Request: unsupported content type ${contentType} in this fake`,
        });
        return;
      }
    }
    this.requests.push({ method, httpMethod: req.method ?? '', contentType, params, at: Date.now() });

    if (token !== this.token) {
      send(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
      return;
    }
    const reply = this.canned.shift() ?? this.behaviour;
    if (reply !== null) {
      this.answer(res, reply);
      return;
    }
    switch (method.toLowerCase()) {
      case 'getme':
        send(res, 200, { ok: true, result: BOT_USER });
        return;
      case 'sendmessage':
        this.sendMessage(res, params);
        return;
      default:
        send(res, 404, { ok: false, error_code: 404, description: 'Not Found: method not found' });
    }
  }

  private sendMessage(res: ServerResponse, params: Record<string, unknown>): void {
    const chatId = chatIdOf(params['chat_id']);
    if (chatId === null) {
      send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: chat_id is empty' });
      return;
    }
    const text = typeof params['text'] === 'string' ? params['text'] : '';
    if (text.trim() === '') {
      send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: message text is empty' });
      return;
    }
    if (text.length > 4096) {
      send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: message is too long' });
      return;
    }
    const messageId = this.nextMessageId++;
    this.messages.push({ messageId, chatId, text, params });
    const chat =
      typeof chatId === 'string'
        ? { id: -1001000000001, type: 'channel', title: chatId.slice(1), username: chatId.slice(1) }
        : chatId > 0
          ? { id: chatId, type: 'private', first_name: 'Test', username: `user${chatId}` }
          : {
              id: chatId,
              type: String(chatId).startsWith('-100') ? 'supergroup' : 'group',
              title: 'Test group',
            };
    send(res, 200, {
      ok: true,
      result: { message_id: messageId, from: BOT_USER, chat, date: Math.floor(Date.now() / 1000), text },
    });
  }

  private answer(res: ServerResponse, reply: FakeTelegramReply): void {
    switch (reply.kind) {
      case 'hang':
        this.hanging.add(res);
        res.on('close', () => this.hanging.delete(res));
        return;
      case 'raw':
        res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'text/html' }).end(reply.body);
        return;
      case 'error':
        send(res, reply.code, {
          ok: false,
          error_code: reply.code,
          description: reply.description,
          ...(reply.retryAfter !== undefined ? { parameters: { retry_after: reply.retryAfter } } : {}),
        });
    }
  }
}

/** An integer chat id (JSON number or digit string) or an `@channelusername`; null when missing. */
function chatIdOf(v: unknown): number | string | null {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'string') {
    if (/^-?\d+$/.test(v)) return Number(v);
    if (/^@\w{5,}$/.test(v)) return v;
  }
  return null;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
