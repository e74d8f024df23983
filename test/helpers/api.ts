/**
 * The API in tests: the API service (startApi) on a free port over a test redis-server and database, Telegram login
 * payloads signed exactly as the Python snippet of docs/runbook.md (section 3) signs them, a
 * cookie-keeping HTTP client, and WebSocket clients (a normal one, and a raw one that can stop reading
 * its socket).
 */
import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll } from 'vitest';
import WebSocket from 'ws';
import { SESSION_COOKIE } from '../../src/api/auth/session.js';
import { apiSettingsFromEnv, type ApiSettings } from '../../src/api/config.js';
import {
  startApi as startApiService,
  type ApiService,
  type StartApiOptions,
} from '../../src/app/start-api.js';
import { silentLogger } from '../../src/util/log.js';
import type { RedisClient } from '../../src/bus/connection.js';
import { streams } from '../../src/contracts/catalog.js';
import { FeedStatus, statusFields } from '../../src/marketdata/feed-status.js';

export const BOT_TOKEN = '123456789:TEST-fake_token-AbCdEf';
export const WEBHOOK_SECRET = 'hook-secret_0123456789';

const servers: ApiService[] = [];
const sockets: { close(): void }[] = [];

afterAll(async () => {
  for (const s of sockets) s.close();
  await Promise.allSettled(servers.map((s) => s.close()));
});

/**
 * Write a feed status entry (docs/contracts.md §8, built by the feed's own code) saying that `source`
 * serves `keys`: the live relay accepts candles and prices subscriptions only for instruments a status
 * lists.
 */
export async function announceFeed(
  redis: RedisClient,
  source: string,
  keys: readonly string[],
): Promise<void> {
  await redis.xAdd(
    streams.feedStatus(source),
    '*',
    statusFields(new FeedStatus(source, keys, 30_000).snapshot(), {}),
  );
}

/**
 * Settings as the environment would give them (no production), with overrides. Sign-ins allow 1000 per
 * minute per address instead of 10, as every test signs in from 127.0.0.1 (test/security/limits.test.ts
 * tries the real default; pass `RATE_LIMIT_LOGIN_PER_MIN` to set another).
 */
export function testSettings(env: NodeJS.ProcessEnv = {}, over: Partial<ApiSettings> = {}): ApiSettings {
  return {
    ...apiSettingsFromEnv({
      SESSION_SECRET: 'test-session-secret',
      RATE_LIMIT_LOGIN_PER_MIN: '1000',
      ...env,
    }),
    ...over,
  };
}

export async function startApi(
  o: Omit<StartApiOptions, 'log' | 'port'> & { port?: number; log?: StartApiOptions['log'] },
): Promise<ApiService> {
  const api = await startApiService({ log: silentLogger, port: 0, publicDir: null, ...o });
  servers.push(api);
  return api;
}

const issued = new Set<number>();
/**
 * A fresh `auth_date` for each payload: the widget makes a new one per sign-in, and a payload works
 * once, but tests sign the same user in more often than once a second. A second already given out is
 * not given again: the next free one before it is (within the accepted age for hundreds of sign-ins).
 */
function freshAuthDate(): number {
  let t = Math.floor(Date.now() / 1000);
  while (issued.has(t)) t -= 1;
  issued.add(t);
  return t;
}

/**
 * The runbook's snippet, line by line: `"\n".join(f"{k}={v}" for k, v in sorted(payload.items()))`, key =
 * sha256(bot token), hash = hex HMAC-SHA256. Values are strings as in the snippet.
 */
export function signedLoginPayload(
  botToken: string,
  fields: Record<string, string> = {},
  authDate = freshAuthDate(),
): Record<string, string> {
  const payload: Record<string, string> = {
    id: '411001',
    auth_date: String(authDate),
    first_name: 'Roe',
    username: 'roehub_test',
    ...fields,
  };
  const dcs = Object.keys(payload)
    .sort()
    .map((k) => `${k}=${payload[k] ?? ''}`)
    .join('\n');
  const secret = createHash('sha256').update(botToken, 'utf8').digest();
  return { ...payload, hash: createHmac('sha256', secret).update(dcs, 'utf8').digest('hex') };
}

/** GET with a chosen Host header (fetch does not let us set it). */
export function statusWithHost(base: string, path: string, host: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface HttpResult<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  readonly text: string;
}

/** A tiny HTTP client that keeps the session cookie, like curl's cookie jar. */
export class HttpClient {
  cookie: string | undefined;

  constructor(readonly base: string) {}

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    o: { json?: unknown; body?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpResult<T>> {
    const headers: Record<string, string> = { ...o.headers };
    if (this.cookie) headers['cookie'] = this.cookie;
    let body: string | undefined = o.body;
    if (o.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(o.json);
    }
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body ?? null,
      redirect: 'manual',
    });
    const setCookie = res.headers.getSetCookie();
    for (const c of setCookie) {
      const [pair = ''] = c.split(';');
      const [name, ...rest] = pair.split('=');
      if (name === SESSION_COOKIE) {
        const value = rest.join('=');
        this.cookie = value ? `${SESSION_COOKIE}=${value}` : undefined;
        if (/max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookie = undefined;
      }
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (metrics text)
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  get<T = Record<string, unknown>>(path: string): Promise<HttpResult<T>> {
    return this.request<T>('GET', path);
  }

  post<T = Record<string, unknown>>(path: string, json?: unknown): Promise<HttpResult<T>> {
    return this.request<T>('POST', path, json === undefined ? {} : { json });
  }

  /** Sign in with the one-time development link (`<base>/auth/dev?token=...`); returns the status. */
  async devLogin(url: string): Promise<number> {
    const u = new URL(url);
    return (await this.get(`${u.pathname}${u.search}`)).status;
  }

  /** Sign in with a signed Login Widget payload; returns the user. */
  async login(botToken: string, fields: Record<string, string> = {}): Promise<{ user_id: string }> {
    const r = await this.post<{ user_id: string }>(
      '/auth/telegram/login',
      signedLoginPayload(botToken, fields),
    );
    if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`);
    return r.body;
  }
}

export type LiveMessage = Record<string, unknown> & {
  op?: string;
  channel?: string;
  stream?: string;
  id?: string | number;
  fields?: Record<string, string>;
  code?: string;
};

/** A WebSocket client of the live relay that records every message. */
export class LiveSocket {
  readonly messages: LiveMessage[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')) as LiveMessage);
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.notify();
    });
  }

  static async open(base: string, cookie: string | undefined): Promise<LiveSocket> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/v1/live/ws`, {
      headers: cookie ? { cookie } : {},
    });
    const s = new LiveSocket(ws);
    sockets.push({ close: () => ws.terminate() });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    await s.next((m) => m.op === 'hello');
    return s;
  }

  send(msg: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** Data messages (entries) of a stream, in arrival order. */
  entries(stream?: string): LiveMessage[] {
    return this.messages.filter((m) => m.op === undefined && (stream === undefined || m.stream === stream));
  }

  /** The first message after `after` (index) that matches. */
  async next(pred: (m: LiveMessage) => boolean, timeoutMs = 10_000, after = 0): Promise<LiveMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(after).find(pred);
      if (found) return found;
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode}) while waiting`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for a message; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async until(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.ws.close();
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/**
 * A WebSocket client on a bare TCP socket: it does the handshake, then can stop reading (`pause`), so
 * the server's writes back up as with a stuck client; `readAll()` resumes and parses every frame the
 * server sent until the close frame.
 */
export class RawWebSocket {
  private buf = Buffer.alloc(0);
  private ended = false;

  private constructor(readonly socket: Socket) {}

  static async open(
    host: string,
    port: number,
    path: string,
    cookie: string | undefined,
  ): Promise<RawWebSocket> {
    const socket = netConnect({ host, port });
    sockets.push({ close: () => socket.destroy() });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const key = Buffer.from('marketbus-test-k').toString('base64');
    socket.write(
      [
        `GET ${path} HTTP/1.1`,
        `Host: ${host}:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
        ...(cookie ? [`Cookie: ${cookie}`] : []),
        '',
        '',
      ].join('\r\n'),
    );
    const raw = new RawWebSocket(socket);
    socket.on('data', (d: Buffer) => (raw.buf = Buffer.concat([raw.buf, d])));
    socket.on('end', () => (raw.ended = true));
    socket.on('close', () => (raw.ended = true));
    socket.on('error', () => (raw.ended = true));
    const deadline = Date.now() + 5000;
    while (!raw.buf.includes('\r\n\r\n')) {
      if (Date.now() > deadline || raw.ended) throw new Error('no handshake answer');
      await new Promise((r) => setTimeout(r, 10));
    }
    const end = raw.buf.indexOf('\r\n\r\n');
    const head = raw.buf.subarray(0, end).toString();
    if (!head.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${head.split('\r\n')[0] ?? ''}`);
    raw.buf = raw.buf.subarray(end + 4);
    return raw;
  }

  /** Send a text frame (masked, as a client must). */
  sendText(text: string): void {
    const payload = Buffer.from(text);
    if (payload.length > 125) throw new Error('short frames only');
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] ?? 0)));
    this.socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
  }

  /** Stop reading: the kernel buffers fill, then the server's socket buffer. */
  pause(): void {
    this.socket.pause();
  }

  /** Resume and parse frames until a close frame (or the connection ends). */
  async readAll(timeoutMs = 20_000): Promise<{ texts: number; closeCode: number | null; reason: string }> {
    this.socket.resume();
    const deadline = Date.now() + timeoutMs;
    let texts = 0;
    for (;;) {
      const frame = this.takeFrame();
      if (frame) {
        if (frame.opcode === 0x1) texts++;
        if (frame.opcode === 0x8) {
          const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : null;
          return { texts, closeCode: code, reason: frame.payload.subarray(2).toString() };
        }
        continue;
      }
      if (this.ended) return { texts, closeCode: null, reason: '' };
      if (Date.now() > deadline) throw new Error('no close frame in time');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private takeFrame(): { opcode: number; payload: Buffer } | null {
    const b = this.buf;
    if (b.length < 2) return null;
    const opcode = (b[0] ?? 0) & 0x0f;
    let len = (b[1] ?? 0) & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      len = Number(b.readBigUInt64BE(2));
      off = 10;
    }
    if (b.length < off + len) return null;
    const payload = b.subarray(off, off + len);
    this.buf = b.subarray(off + len);
    return { opcode, payload };
  }
}
