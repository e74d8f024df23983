/**
 * A local fake of one Binance market (spot or USD-M futures) on 127.0.0.1, speaking Binance's documented
 * formats: combined-stream WebSockets at `/stream?streams=a/b/c` (plus SUBSCRIBE / UNSUBSCRIBE /
 * LIST_SUBSCRIPTIONS method messages), and REST klines at `/api/v3/klines` (spot) or `/fapi/v1/klines`
 * (futures). Kline values are a deterministic function of symbol and minute, so a test can compute the
 * candle it expects from either path. Test controls push klines and book tickers, drop connections, send
 * `serverShutdown`, go silent (no data, no pongs), refuse connections, and queue REST replies such as a
 * 429 with `Retry-After`. The market clock is the test's `now()`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';

export type FakeMarket = 'spot' | 'futures';

export const MINUTE = 60_000;

const KLINES_PATH: Readonly<Record<FakeMarket, string>> = {
  spot: '/api/v3/klines',
  futures: '/fapi/v1/klines',
};
const MAX_LIMIT: Readonly<Record<FakeMarket, number>> = { spot: 1000, futures: 1500 };

export interface FakeKlineValues {
  readonly o: string;
  readonly h: string;
  readonly l: string;
  readonly c: string;
  readonly v: string;
  readonly q: string;
}

/** The kline values of `symbol`'s minute starting at `openTime` (the same on the socket and over REST). */
export function fakeKlineValues(symbol: string, openTime: number): FakeKlineValues {
  let seed = 0;
  for (const ch of symbol) seed = (seed * 31 + ch.charCodeAt(0)) % 1000;
  const minute = Math.floor(openTime / MINUTE);
  const open = 100 + seed / 10 + (minute % 97);
  const close = open + ((minute % 5) - 2) * 0.25;
  const volume = 1 + (minute % 13);
  return {
    o: open.toFixed(8),
    h: (Math.max(open, close) + 0.5).toFixed(8),
    l: (Math.min(open, close) - 0.5).toFixed(8),
    c: close.toFixed(8),
    v: volume.toFixed(8),
    q: ((volume * (open + close)) / 2).toFixed(8),
  };
}

export interface FakeConnection {
  readonly id: number;
  /** Request path, e.g. `/stream`. */
  readonly path: string;
  /** Subscribed streams: from the URL, then changed by SUBSCRIBE / UNSUBSCRIBE. */
  readonly streams: string[];
  readonly socket: WebSocket;
  /** Pings received from the client. */
  pings: number;
  /** Stops sending and stops answering pings. */
  silent: boolean;
  closed: boolean;
  closeCode: number | null;
  /** Who ended it: the client (close frame or hang-up) or the server (a test control). */
  closedBy: 'client' | 'server' | null;
}

export interface RestRequest {
  readonly path: string;
  readonly params: URLSearchParams;
  /** Real time of arrival, epoch ms. */
  readonly at: number;
}

export interface CannedReply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface FakeBinanceOptions {
  readonly market?: FakeMarket;
  /** Market clock: event times, which klines REST has. */
  readonly now: () => number;
  /** Send an open (`x=false`) kline update of the current minute on every kline stream this often, ms (0 = never). */
  readonly heartbeatMs?: number;
}

export class FakeBinance {
  readonly market: FakeMarket;
  readonly connections: FakeConnection[] = [];
  readonly restRequests: RestRequest[] = [];
  /** `SYMBOL:openTime` of minutes REST does not have (exchange gaps). */
  readonly missing = new Set<string>();
  /** Answer WebSocket upgrades with 503 while true. */
  refuseConnections = false;
  private readonly canned: CannedReply[] = [];
  private readonly wss: WebSocketServer;
  private heartbeat: NodeJS.Timeout | null = null;
  private nextId = 1;
  private updateId = 1;

  private constructor(
    private readonly server: Server,
    private readonly opts: FakeBinanceOptions,
  ) {
    this.market = opts.market ?? 'spot';
    this.wss = new WebSocketServer({ noServer: true, autoPong: false, perMessageDeflate: false });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    if (opts.heartbeatMs) this.heartbeat = setInterval(() => this.beat(), opts.heartbeatMs);
  }

  static async start(opts: FakeBinanceOptions): Promise<FakeBinance> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new FakeBinance(server, opts);
  }

  private get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** WebSocket base, as `market_data.sources.binance.ws_url` takes it. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** REST base, as `market_data.sources.binance.rest_url` takes it. */
  get restUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get openConnections(): FakeConnection[] {
    return this.connections.filter((c) => !c.closed);
  }

  /** Klines requests only. */
  get klineRequests(): RestRequest[] {
    return this.restRequests.filter((r) => r.path === KLINES_PATH[this.market]);
  }

  /** The next REST requests get these replies, in order, instead of klines. */
  queueRestReply(...replies: CannedReply[]): void {
    this.canned.push(...replies);
  }

  /** Send `data` on `stream` to every open, non-silent connection subscribed to it. Returns how many. */
  sendToStream(stream: string, data: unknown): number {
    const text = JSON.stringify({ stream, data });
    let n = 0;
    for (const c of this.openConnections) {
      if (c.silent || !c.streams.includes(stream)) continue;
      c.socket.send(text);
      n += 1;
    }
    return n;
  }

  /** Send a text frame as it is to every open, non-silent connection. Returns how many. */
  sendRaw(text: string): number {
    let n = 0;
    for (const c of this.openConnections) {
      if (c.silent) continue;
      c.socket.send(text);
      n += 1;
    }
    return n;
  }

  /** The kline payload Binance sends for `symbol`'s minute at `openTime`. */
  klinePayload(symbol: string, openTime: number, closed: boolean): Record<string, unknown> {
    const v = fakeKlineValues(symbol, openTime);
    return {
      e: 'kline',
      E: this.opts.now(),
      s: symbol,
      k: {
        t: openTime,
        T: openTime + MINUTE - 1,
        s: symbol,
        i: '1m',
        f: 100,
        L: 200,
        o: v.o,
        c: v.c,
        h: v.h,
        l: v.l,
        v: v.v,
        n: 101,
        x: closed,
        q: v.q,
        V: '0.50000000',
        Q: '0.50000000',
        B: '0',
      },
    };
  }

  /** Push a kline update (closed by default) on `<symbol>@kline_1m`. Returns the connections reached. */
  pushKline(symbol: string, openTime: number, closed = true): number {
    return this.sendToStream(`${symbol.toLowerCase()}@kline_1m`, this.klinePayload(symbol, openTime, closed));
  }

  /** Push a book ticker; futures' carries `e`, `E` and `T` like Binance's. */
  pushBookTicker(symbol: string, bid: string, ask: string): number {
    const t = this.opts.now();
    const base = { u: this.updateId++, s: symbol, b: bid, B: '1.00000000', a: ask, A: '2.00000000' };
    const data = this.market === 'futures' ? { e: 'bookTicker', ...base, E: t, T: t - 1 } : base;
    return this.sendToStream(`${symbol.toLowerCase()}@bookTicker`, data);
  }

  /** Binance's notice before it shuts a server down (combined-stream form). */
  serverShutdown(): number {
    return this.sendRaw(
      JSON.stringify({ stream: '!serverShutdown', data: { e: 'serverShutdown', E: this.opts.now() } }),
    );
  }

  /** Cut every open connection at once (no close frame). */
  dropAll(): void {
    for (const c of this.openConnections) {
      c.closedBy = 'server';
      c.socket.terminate();
    }
  }

  /** The open connections stop sending and stop answering pings; the TCP connections stay up. */
  goSilent(): void {
    for (const c of this.openConnections) c.silent = true;
  }

  async waitForConnections(n: number, timeoutMs = 5000): Promise<FakeConnection> {
    const deadline = Date.now() + timeoutMs;
    while (this.connections.length < n || this.connections[n - 1]?.socket.readyState !== WebSocket.OPEN) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for connection #${n} (have ${this.connections.length})`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const c = this.connections[n - 1];
    if (!c) throw new Error('unreachable');
    return c;
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const c of this.openConnections) c.socket.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private beat(): void {
    const minute = Math.floor(this.opts.now() / MINUTE) * MINUTE;
    for (const c of this.openConnections) {
      if (c.silent) continue;
      for (const s of c.streams) {
        if (!s.endsWith('@kline_1m')) continue;
        const symbol = s.slice(0, -'@kline_1m'.length).toUpperCase();
        c.socket.send(JSON.stringify({ stream: s, data: this.klinePayload(symbol, minute, false) }));
      }
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const refuse = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (this.refuseConnections) return refuse('503 Service Unavailable');
    if (url.pathname !== '/stream' && !url.pathname.startsWith('/ws')) return refuse('404 Not Found');
    const fromUrl = url.pathname.startsWith('/ws/')
      ? [url.pathname.slice('/ws/'.length)]
      : (url.searchParams.get('streams') ?? '').split('/').filter((s) => s.length > 0);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: FakeConnection = {
        id: this.nextId++,
        path: url.pathname,
        streams: fromUrl,
        socket: ws,
        pings: 0,
        silent: false,
        closed: false,
        closeCode: null,
        closedBy: null,
      };
      this.connections.push(conn);
      ws.on('ping', (data) => {
        conn.pings += 1;
        if (!conn.silent) ws.pong(data);
      });
      ws.on('message', (data: Buffer) => this.onControl(conn, data.toString('utf8')));
      ws.on('error', () => undefined);
      ws.on('close', (code) => {
        conn.closed = true;
        conn.closeCode = code;
        conn.closedBy ??= 'client';
      });
    });
  }

  /** Binance's live subscribe / unsubscribe / list method messages. */
  private onControl(conn: FakeConnection, text: string): void {
    let msg: { method?: unknown; params?: unknown; id?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      conn.socket.send(JSON.stringify({ code: 3, msg: 'Invalid JSON' }));
      return;
    }
    const id = msg.id ?? null;
    const params = Array.isArray(msg.params)
      ? msg.params.filter((p): p is string => typeof p === 'string')
      : [];
    switch (msg.method) {
      case 'SUBSCRIBE':
        for (const p of params) if (!conn.streams.includes(p)) conn.streams.push(p);
        conn.socket.send(JSON.stringify({ result: null, id }));
        return;
      case 'UNSUBSCRIBE':
        for (const p of params) {
          const i = conn.streams.indexOf(p);
          if (i >= 0) conn.streams.splice(i, 1);
        }
        conn.socket.send(JSON.stringify({ result: null, id }));
        return;
      case 'LIST_SUBSCRIPTIONS':
        conn.socket.send(JSON.stringify({ result: conn.streams, id }));
        return;
      default:
        conn.socket.send(JSON.stringify({ code: 2, msg: 'Invalid request: unknown method', id }));
    }
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    this.restRequests.push({ path: url.pathname, params: url.searchParams, at: Date.now() });
    const reply = (status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const canned = this.canned.shift();
    if (canned) return reply(canned.status, canned.body ?? '', canned.headers);
    if (req.method !== 'GET' || url.pathname !== KLINES_PATH[this.market]) {
      return reply(404, { code: -1, msg: `no ${url.pathname} on this ${this.market} server` });
    }
    const p = url.searchParams;
    const symbol = p.get('symbol') ?? '';
    if (!/^[A-Z0-9_]{2,40}$/.test(symbol)) return reply(400, { code: -1121, msg: 'Invalid symbol.' });
    if (p.get('interval') !== '1m') return reply(400, { code: -1120, msg: 'Invalid interval.' });
    const limit = Math.min(Number(p.get('limit') ?? 500), MAX_LIMIT[this.market]);
    if (!Number.isInteger(limit) || limit < 1) return reply(400, { code: -1130, msg: 'Invalid limit.' });
    // Binance also returns the minute still open (its close time lies in the future).
    const current = Math.floor(this.opts.now() / MINUTE) * MINUTE;
    const start = p.has('startTime')
      ? Math.ceil(Number(p.get('startTime')) / MINUTE) * MINUTE
      : current - (limit - 1) * MINUTE;
    const end = p.has('endTime') ? Number(p.get('endTime')) : current;
    const rows: unknown[] = [];
    for (let t = start; t <= end && t <= current && rows.length < limit; t += MINUTE) {
      if (this.missing.has(`${symbol}:${t}`)) continue;
      const v = fakeKlineValues(symbol, t);
      rows.push([t, v.o, v.h, v.l, v.c, v.v, t + MINUTE - 1, v.q, 101, '0.50000000', '0.50000000', '0']);
    }
    reply(200, rows);
  }
}
