/**
 * A local fake of one Binance market (spot or USD-M futures) on 127.0.0.1, speaking Binance's documented
 * formats: combined-stream WebSockets at `/stream?streams=a/b/c` (plus SUBSCRIBE / UNSUBSCRIBE /
 * LIST_SUBSCRIPTIONS method messages), REST klines at `/api/v3/klines` (spot) or `/fapi/v1/klines`
 * (futures) and the symbol list at `/api/v3/exchangeInfo` / `/fapi/v1/exchangeInfo`. Kline values are a
 * deterministic function of symbol and minute, so a test can compute the candle it expects from either
 * path; a minute marked as without trades is Binance's zero-trade kline (volume 0, o=h=l=c = the previous
 * close), and the minute still open is served over REST with its values so far, as Binance does.
 * REST weight is counted per minute as Binance counts it per IP (docs/venues/binance.md): past the limit,
 * or on a queued rate-limit trap, the answer is HTTP 429 with `Retry-After` and code -1003; a call made
 * inside a `Retry-After` is answered 418 (Binance's ban) and counted as a violation.
 * Test controls push klines and book tickers, drop connections, send `serverShutdown`, go silent (no
 * data, no pongs), refuse connections, and queue REST replies. The market clock is the test's `now()`.
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
const EXCHANGE_INFO_PATH: Readonly<Record<FakeMarket, string>> = {
  spot: '/api/v3/exchangeInfo',
  futures: '/fapi/v1/exchangeInfo',
};

/**
 * Binance's documented limits (docs/venues/binance.md cites the pages): REQUEST_WEIGHT per minute per
 * IP, the weights of the two calls a source makes, WebSocket connection attempts per 5 minutes per IP,
 * and incoming messages per second per connection.
 */
export const BINANCE_LIMITS = Object.freeze({
  spot: {
    restWeightPerMinute: 6000,
    klinesWeight: (_limit: number): number => 2,
    exchangeInfoWeight: 20,
    connectionsPer5Min: 300,
    incomingMessagesPerSecond: 5,
  },
  futures: {
    restWeightPerMinute: 2400,
    klinesWeight: (limit: number): number => (limit < 100 ? 1 : limit < 500 ? 2 : limit <= 1000 ? 5 : 10),
    exchangeInfoWeight: 1,
    connectionsPer5Min: 300,
    incomingMessagesPerSecond: 10,
  },
} satisfies Record<FakeMarket, unknown>);

/** Symbols a fake lists in its exchangeInfo unless told otherwise. */
const DEFAULT_LISTED = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT'];

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
  /** Real time the upgrade was accepted, epoch ms. */
  readonly openedAt: number;
  /** Real times of the text frames the client sent (SUBSCRIBE and other method messages). */
  readonly controlTimes: number[];
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
  /** Its weight under Binance's REQUEST_WEIGHT limit (0 for paths Binance does not have). */
  readonly weight: number;
  /** HTTP status answered. */
  status: number;
}

/** A rate-limit answer waiting for the next klines call; may be shared by the fakes of one venue. */
export interface RateLimitTrap {
  /** `Retry-After` of the next klines call's 429, ms; null when none is queued. */
  retryAfterMs: number | null;
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
  /** Symbols exchangeInfo lists. @defaultValue BTCUSDT, ETHUSDT, BNBUSDT */
  readonly listed?: Iterable<string>;
  /** Where `rateLimitNextKlines` queues; pass one object to several fakes to trap the first call of any. */
  readonly rateLimitTrap?: RateLimitTrap;
  /** The set behind `unknownSymbols`; pass one set to several fakes to share it. */
  readonly unknownSymbols?: Set<string>;
}

export class FakeBinance {
  readonly market: FakeMarket;
  readonly connections: FakeConnection[] = [];
  readonly restRequests: RestRequest[] = [];
  /** `SYMBOL:openTime` of minutes REST does not have (exchange gaps). */
  readonly missing = new Set<string>();
  /** Answer WebSocket upgrades with 503 while true. */
  refuseConnections = false;
  /** Symbols exchangeInfo lists (besides any in `unknownSymbols`, which it never lists). */
  readonly listed: Set<string>;
  /** Symbols Binance does not have: not listed, klines answer -1121, streams of them carry nothing. */
  readonly unknownSymbols: Set<string>;
  /** `SYMBOL:openTime` of minutes without trades (Binance's zero-volume kline). */
  readonly zeroTrade = new Set<string>();
  /** REST calls made inside a `Retry-After` the fake had given (answered 418). */
  readonly violations: RestRequest[] = [];
  private readonly trap: RateLimitTrap;
  /** Until when (real ms) calls must wait after the last 429. */
  private retryUntil = 0;
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
    this.listed = new Set(opts.listed ?? DEFAULT_LISTED);
    this.trap = opts.rateLimitTrap ?? { retryAfterMs: null };
    this.unknownSymbols = opts.unknownSymbols ?? new Set();
    this.wss = new WebSocketServer({ noServer: true, autoPong: false, perMessageDeflate: false });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    if (opts.heartbeatMs) this.heartbeat = setInterval(() => this.beat(), opts.heartbeatMs);
  }

  static async start(opts: FakeBinanceOptions): Promise<FakeBinance> {
    // Combined-stream URLs of hundreds of instruments are longer than Node's 16 KiB header default.
    const server = createServer({ maxHeaderSize: 256 * 1024 });
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

  /** Answer the next klines call with Binance's 429 (`Retry-After` in whole seconds, code -1003). */
  rateLimitNextKlines(retryAfterMs: number): void {
    this.trap.retryAfterMs = retryAfterMs;
  }

  /**
   * The final values of `symbol`'s minute at `openTime`: `fakeKlineValues`, or for a minute without
   * trades Binance's zero-volume kline at the previous close.
   */
  klineValues(symbol: string, openTime: number): FakeKlineValues {
    if (!this.zeroTrade.has(`${symbol}:${openTime}`)) return fakeKlineValues(symbol, openTime);
    const prev = this.klineValues(symbol, openTime - MINUTE).c;
    return { o: prev, h: prev, l: prev, c: prev, v: '0.00000000', q: '0.00000000' };
  }

  /** REST weight received in the last minute (what Binance's `X-MBX-USED-WEIGHT-1M` tells). */
  usedWeight(at: number = Date.now()): number {
    let w = 0;
    for (const r of this.restRequests) if (r.at > at - MINUTE) w += r.weight;
    return w;
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
    const v = this.klineValues(symbol, openTime);
    const traded = Number(v.v) > 0;
    return {
      e: 'kline',
      E: this.opts.now(),
      s: symbol,
      k: {
        t: openTime,
        T: openTime + MINUTE - 1,
        s: symbol,
        i: '1m',
        f: traded ? 100 : -1,
        L: traded ? 200 : -1,
        o: v.o,
        c: v.c,
        h: v.h,
        l: v.l,
        v: v.v,
        n: traded ? 101 : 0,
        x: closed,
        q: v.q,
        V: traded ? '0.50000000' : '0.00000000',
        Q: traded ? '0.50000000' : '0.00000000',
        B: '0',
      },
    };
  }

  /** Push a kline update (closed by default) on `<symbol>@kline_1m`. Returns the connections reached. */
  pushKline(symbol: string, openTime: number, closed = true): number {
    if (this.unknownSymbols.has(symbol)) return 0;
    return this.sendToStream(`${symbol.toLowerCase()}@kline_1m`, this.klinePayload(symbol, openTime, closed));
  }

  /** Push a book ticker; futures' carries `e`, `E` and `T` like Binance's. */
  pushBookTicker(symbol: string, bid: string, ask: string): number {
    if (this.unknownSymbols.has(symbol)) return 0;
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

  /** The silent connections talk again. */
  speak(): void {
    for (const c of this.openConnections) c.silent = false;
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
        if (this.unknownSymbols.has(symbol)) continue;
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
        openedAt: Date.now(),
        controlTimes: [],
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
      ws.on('message', (data: Buffer) => {
        conn.controlTimes.push(Date.now());
        this.onControl(conn, data.toString('utf8'));
      });
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

  /** Binance's weight of a call (docs/venues/binance.md); 0 for paths it does not have. */
  private weightOf(path: string, params: URLSearchParams): number {
    const limits = BINANCE_LIMITS[this.market];
    if (path === KLINES_PATH[this.market]) return limits.klinesWeight(Number(params.get('limit') ?? 500));
    if (path === EXCHANGE_INFO_PATH[this.market]) return limits.exchangeInfoWeight;
    return 0;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const at = Date.now();
    const request: RestRequest = {
      path: url.pathname,
      params: url.searchParams,
      at,
      weight: this.weightOf(url.pathname, url.searchParams),
      status: 200,
    };
    this.restRequests.push(request);
    const reply = (status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void => {
      request.status = status;
      res.writeHead(status, {
        'content-type': 'application/json',
        'x-mbx-used-weight-1m': String(this.usedWeight(at)),
        ...headers,
      });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const tooMany = (retryAfterMs: number): void => {
      const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      this.retryUntil = Math.max(this.retryUntil, at + seconds * 1000);
      const limit = BINANCE_LIMITS[this.market].restWeightPerMinute;
      reply(
        429,
        {
          code: -1003,
          msg: `Too many requests; current limit of IP(127.0.0.1) is ${limit} requests per minute. Please use the websocket for live updates to avoid polling the API.`,
        },
        { 'retry-after': String(seconds) },
      );
    };
    const canned = this.canned.shift();
    if (canned) return reply(canned.status, canned.body ?? '', canned.headers);
    if (at < this.retryUntil) {
      this.violations.push(request);
      const seconds = Math.ceil((this.retryUntil - at) / 1000);
      return reply(
        418,
        { code: -1003, msg: `Way too many requests; IP(127.0.0.1) banned until ${this.retryUntil}.` },
        { 'retry-after': String(seconds) },
      );
    }
    if (this.usedWeight(at) > BINANCE_LIMITS[this.market].restWeightPerMinute) {
      const oldest = this.restRequests.find((r) => r.at > at - MINUTE && r.weight > 0);
      return tooMany((oldest?.at ?? at) + MINUTE - at);
    }
    if (req.method !== 'GET') return reply(405, { code: -1, msg: 'GET only on this fake' });
    if (url.pathname === EXCHANGE_INFO_PATH[this.market]) return this.exchangeInfo(url.searchParams, reply);
    if (url.pathname !== KLINES_PATH[this.market]) {
      return reply(404, { code: -1, msg: `no ${url.pathname} on this ${this.market} server` });
    }
    if (this.trap.retryAfterMs !== null) {
      const ms = this.trap.retryAfterMs;
      this.trap.retryAfterMs = null;
      return tooMany(ms);
    }
    const p = url.searchParams;
    const symbol = p.get('symbol') ?? '';
    if (!/^[A-Z0-9_]{2,40}$/.test(symbol) || this.unknownSymbols.has(symbol)) {
      return reply(400, { code: -1121, msg: 'Invalid symbol.' });
    }
    if (p.get('interval') !== '1m') return reply(400, { code: -1120, msg: 'Invalid interval.' });
    const limit = Math.min(Number(p.get('limit') ?? 500), MAX_LIMIT[this.market]);
    if (!Number.isInteger(limit) || limit < 1) return reply(400, { code: -1130, msg: 'Invalid limit.' });
    // Binance also returns the minute still open (its close time lies in the future), with its values
    // so far: here no trade yet but the first (o = h = l = c, half the volume).
    const current = Math.floor(this.opts.now() / MINUTE) * MINUTE;
    const start = p.has('startTime')
      ? Math.ceil(Number(p.get('startTime')) / MINUTE) * MINUTE
      : current - (limit - 1) * MINUTE;
    const end = p.has('endTime') ? Number(p.get('endTime')) : current;
    const rows: unknown[] = [];
    for (let t = start; t <= end && t <= current && rows.length < limit; t += MINUTE) {
      if (this.missing.has(`${symbol}:${t}`)) continue;
      const f = this.klineValues(symbol, t);
      const v =
        t === current
          ? { ...f, h: f.o, l: f.o, c: f.o, v: (Number(f.v) / 2).toFixed(8), q: (Number(f.q) / 2).toFixed(8) }
          : f;
      const n = Number(v.v) > 0 ? 101 : 0;
      rows.push([t, v.o, v.h, v.l, v.c, v.v, t + MINUTE - 1, v.q, n, '0.50000000', '0.50000000', '0']);
    }
    reply(200, rows);
  }

  /** `exchangeInfo`: the rate limits and the listed symbols (all, or those of `symbol` / `symbols`). */
  private exchangeInfo(p: URLSearchParams, reply: (status: number, body: unknown) => void): void {
    const listed = [...this.listed].filter((s) => !this.unknownSymbols.has(s));
    let wanted = listed;
    const asked = p.get('symbols') ?? (p.has('symbol') ? JSON.stringify([p.get('symbol')]) : null);
    if (asked !== null) {
      let names: unknown;
      try {
        names = JSON.parse(asked);
      } catch {
        return reply(400, { code: -1100, msg: 'Illegal characters found in parameter symbols.' });
      }
      if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || !listed.includes(n))) {
        return reply(400, { code: -1121, msg: 'Invalid symbol.' });
      }
      wanted = names as string[];
    }
    const limits = BINANCE_LIMITS[this.market];
    const symbol = (s: string): Record<string, unknown> => {
      const quoteAsset = s.endsWith('USDT') ? 'USDT' : s.slice(-3);
      const base = { symbol: s, status: 'TRADING', baseAsset: s.slice(0, -quoteAsset.length), quoteAsset };
      return this.market === 'futures'
        ? { ...base, pair: s, contractType: 'PERPETUAL', marginAsset: quoteAsset }
        : { ...base, isSpotTradingAllowed: true, permissions: [] };
    };
    reply(200, {
      timezone: 'UTC',
      serverTime: Date.now(),
      rateLimits: [
        {
          rateLimitType: 'REQUEST_WEIGHT',
          interval: 'MINUTE',
          intervalNum: 1,
          limit: limits.restWeightPerMinute,
        },
      ],
      exchangeFilters: [],
      symbols: wanted.map(symbol),
    });
  }
}
