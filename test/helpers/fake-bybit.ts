/**
 * A local fake of Bybit's v5 public API on one 127.0.0.1 port, speaking Bybit's documented formats
 * (docs/venues/bybit.md cites each): WebSockets at `/v5/public/spot` and `/v5/public/linear` with the
 * `op` requests `subscribe` / `unsubscribe` / `ping` and their replies, `kline.1.<SYMBOL>` and
 * `orderbook.1.<SYMBOL>` pushes; REST `GET /v5/market/kline` and `GET /v5/market/instruments-info` in the
 * `{retCode, retMsg, result}` envelope. Candle values are a deterministic function of market, symbol and
 * minute, so a test knows every canonical candle. The market clock is the test's `now()`.
 *
 * Documented limits it enforces: 10 args per spot subscribe, 21,000 characters of args per connection,
 * 500 new connections per 5 minutes (refused beyond), 600 REST requests per 5 s (then HTTP 403 "access too
 * frequent" for the ban), kline `limit` 1..1000, and the cut of a connection without ping or data for 10
 * minutes. Test controls push candles and books, drop or close every socket, go silent, and answer the
 * next kline call with Bybit's rate-limit reply (retCode 10006 with `X-Bapi-Limit-*` headers).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';

export type FakeBybitMarket = 'spot' | 'linear';

export const MINUTE = 60_000;
const WS_PATH: Readonly<Record<string, FakeBybitMarket>> = {
  '/v5/public/spot': 'spot',
  '/v5/public/linear': 'linear',
};
const SPOT_ARGS_PER_REQUEST = 10;
const ARGS_CHARS_PER_CONNECTION = 21_000;
const KLINE_MAX_LIMIT = 1000;
const KLINE_DEFAULT_LIMIT = 200;
const LINEAR_INSTRUMENTS_DEFAULT_LIMIT = 500;
const LINEAR_INSTRUMENTS_MAX_LIMIT = 1000;

/** A candle as Bybit writes it: decimal strings. */
export interface FakeBybitCandle {
  readonly open: string;
  readonly high: string;
  readonly low: string;
  readonly close: string;
  readonly volume: string;
  readonly turnover: string;
}

/** A decimal the way Bybit writes it: no exponent, no trailing zeros (`"16649.5"`, `"0"`). */
function dec(n: number, places = 4): string {
  return String(Number(n.toFixed(places)));
}

/** The traded candle of `symbol` on `market` for the minute at `openTime` (before zero-trade minutes). */
export function tradedCandle(market: FakeBybitMarket, symbol: string, openTime: number): FakeBybitCandle {
  let seed = market === 'linear' ? 7 : 0;
  for (const ch of symbol) seed = (seed * 31 + ch.charCodeAt(0)) % 1000;
  const minute = Math.floor(openTime / MINUTE);
  const open = 100 + seed / 10 + (minute % 97);
  const close = open + ((minute % 5) - 2) * 0.25;
  const volume = 1 + (minute % 13) + 0.125;
  return {
    open: dec(open),
    high: dec(Math.max(open, close) + 0.5),
    low: dec(Math.min(open, close) - 0.5),
    close: dec(close),
    volume: dec(volume),
    turnover: dec((volume * (open + close)) / 2),
  };
}

export interface FakeBybitConnection {
  readonly id: number;
  readonly market: FakeBybitMarket;
  readonly connId: string;
  /** Subscribed topics. */
  readonly topics: Set<string>;
  readonly socket: WebSocket;
  /** Real times of its subscribe requests. */
  readonly subscribeTimes: number[];
  /** Successful subscribe replies sent. */
  subscribed: number;
  pings: number;
  /** Sends nothing and answers no ping. */
  silent: boolean;
  closed: boolean;
  idleTimer: NodeJS.Timeout | null;
}

export interface FakeBybitRequest {
  readonly path: string;
  readonly params: URLSearchParams;
  /** Real time of arrival, epoch ms. */
  readonly at: number;
  /** HTTP status answered. */
  status: number;
  /** Answered with Bybit's rate-limit reply (HTTP 403 of the IP limit, or retCode 10006). */
  rateLimited: boolean;
}

export interface FakeBybitOptions {
  /** Market clock: which minute is open, event times. */
  readonly now: () => number;
  /** Push an update of the open candle on every kline topic this often, ms (0 = never). */
  readonly klinePushMs?: number;
  /** Cut a connection that sent no ping and got no data this long, ms (Bybit: 10 minutes). */
  readonly idleCutMs?: number;
  /** How long the IP ban after breaking the REST IP limit lasts, ms (Bybit: at least 10 minutes). */
  readonly ipBanMs?: number;
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

export class FakeBybit {
  readonly connections: FakeBybitConnection[] = [];
  readonly restRequests: FakeBybitRequest[] = [];
  /** Real times at which WebSocket connections were accepted. */
  readonly connectionTimes: number[] = [];
  /** Symbols Bybit does not list: absent from instruments-info, refused on subscribe and by REST. */
  readonly unknownSymbols = new Set<string>();
  /** `market:symbol:openTime` of minutes without a trade. */
  readonly zeroTrades = new Set<string>();
  private readonly listed: Record<FakeBybitMarket, Set<string>> = {
    spot: new Set(['BTCUSDT', 'ETHUSDT']),
    linear: new Set(['BTCUSDT', 'ETHUSDT']),
  };
  private readonly rateLimited: number[] = [];
  private readonly wss: WebSocketServer;
  private readonly pushTimer: NodeJS.Timeout | null = null;
  private bannedUntil = 0;
  private nextId = 1;
  private updateId = 1;

  private constructor(
    private readonly server: Server,
    private readonly opts: FakeBybitOptions,
  ) {
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    if (opts.klinePushMs) this.pushTimer = setInterval(() => this.pushOpenCandles(), opts.klinePushMs);
  }

  static async start(opts: FakeBybitOptions): Promise<FakeBybit> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new FakeBybit(server, opts);
  }

  private get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `market_data.sources.bybit.ws_url` for this server. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** `market_data.sources.bybit.rest_url` for this server. */
  get restUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get openConnections(): FakeBybitConnection[] {
    return this.connections.filter((c) => !c.closed);
  }

  /** List `symbol` on `market` (instruments-info, subscribe, REST) unless it is one of `unknownSymbols`. */
  list(market: FakeBybitMarket, symbol: string): void {
    this.listed[market].add(symbol);
  }

  isListed(market: FakeBybitMarket, symbol: string): boolean {
    return this.listed[market].has(symbol) && !this.unknownSymbols.has(symbol);
  }

  /**
   * The candle of the minute at `openTime`. A minute without trades repeats the last traded close as
   * open, high, low and close with volume and turnover `"0"` (docs/venues/bybit.md).
   */
  candle(market: FakeBybitMarket, symbol: string, openTime: number): FakeBybitCandle {
    if (!this.zeroTrades.has(`${market}:${symbol}:${openTime}`))
      return tradedCandle(market, symbol, openTime);
    let t = openTime - MINUTE;
    while (this.zeroTrades.has(`${market}:${symbol}:${t}`)) t -= MINUTE;
    const last = tradedCandle(market, symbol, t).close;
    return { open: last, high: last, low: last, close: last, volume: '0', turnover: '0' };
  }

  /** The next kline call gets Bybit's API rate-limit reply, its limit resetting `retryAfterMs` later. */
  rateLimitNext(retryAfterMs: number): void {
    this.rateLimited.push(retryAfterMs);
  }

  /** Send `frame` on every open, non-silent connection of `market` subscribed to `topic`. */
  sendToTopic(market: FakeBybitMarket, topic: string, frame: unknown): number {
    const text = JSON.stringify(frame);
    let n = 0;
    for (const c of this.openConnections) {
      if (c.market !== market || c.silent || !c.topics.has(topic)) continue;
      this.send(c, text);
      n += 1;
    }
    return n;
  }

  /** The `kline.1.<symbol>` frame Bybit pushes for the minute at `openTime`. */
  klineFrame(market: FakeBybitMarket, symbol: string, openTime: number, confirm: boolean): unknown {
    const v = this.candle(market, symbol, openTime);
    const now = this.opts.now();
    const end = confirm
      ? openTime + MINUTE - 1
      : Math.min(Math.max(now, openTime + 1), openTime + MINUTE - 1);
    return {
      topic: `kline.1.${symbol}`,
      data: [
        {
          start: openTime,
          end,
          interval: '1',
          open: v.open,
          close: v.close,
          high: v.high,
          low: v.low,
          volume: v.volume,
          turnover: v.turnover,
          confirm,
          timestamp: Math.min(now, openTime + MINUTE - 1),
        },
      ],
      ts: now,
      type: 'snapshot',
    };
  }

  pushKline(market: FakeBybitMarket, symbol: string, openTime: number, confirm: boolean): number {
    return this.sendToTopic(market, `kline.1.${symbol}`, this.klineFrame(market, symbol, openTime, confirm));
  }

  /** A level-1 order book snapshot (`orderbook.1.<symbol>`). */
  pushBook(market: FakeBybitMarket, symbol: string, bid: string, ask: string): number {
    const now = this.opts.now();
    const u = this.updateId++;
    return this.sendToTopic(market, `orderbook.1.${symbol}`, {
      topic: `orderbook.1.${symbol}`,
      type: 'snapshot',
      ts: now,
      data: { s: symbol, b: [[bid, '1.5']], a: [[ask, '2.5']], u, seq: 1_000_000 + u },
      cts: now - 1,
    });
  }

  /** Cut every open connection without a close frame. */
  dropAll(): void {
    for (const c of this.openConnections) c.socket.terminate();
  }

  /**
   * Bybit's server-side close: its public streams send no notice before maintenance; the connection is
   * closed and the client is to reconnect at once (docs/venues/bybit.md).
   */
  serverClose(): void {
    for (const c of this.openConnections) c.socket.close(1001, 'server restart');
  }

  goSilent(): void {
    for (const c of this.openConnections) c.silent = true;
  }

  speak(): void {
    for (const c of this.connections) c.silent = false;
  }

  async close(): Promise<void> {
    if (this.pushTimer) clearInterval(this.pushTimer);
    for (const c of this.connections) if (c.idleTimer) clearTimeout(c.idleTimer);
    for (const c of this.openConnections) c.socket.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private send(c: FakeBybitConnection, text: string): void {
    c.socket.send(text);
    this.armIdleCut(c);
  }

  private armIdleCut(c: FakeBybitConnection): void {
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.idleTimer = setTimeout(() => c.socket.terminate(), this.opts.idleCutMs ?? 600_000);
    c.idleTimer.unref();
  }

  private pushOpenCandles(): void {
    const minute = Math.floor(this.opts.now() / MINUTE) * MINUTE;
    for (const c of this.openConnections) {
      if (c.silent) continue;
      for (const topic of c.topics) {
        if (!topic.startsWith('kline.1.')) continue;
        const symbol = topic.slice('kline.1.'.length);
        this.send(c, JSON.stringify(this.klineFrame(c.market, symbol, minute, false)));
      }
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const refuse = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    const market = WS_PATH[url.pathname];
    if (market === undefined) return refuse('404 Not Found');
    const now = Date.now();
    // At most 500 connections opened in any 5 minutes per IP.
    if (this.connectionTimes.filter((t) => t > now - 300_000).length >= 500) {
      return refuse('429 Too Many Requests');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.connectionTimes.push(Date.now());
      const conn: FakeBybitConnection = {
        id: this.nextId++,
        market,
        connId: randomUUID(),
        topics: new Set(),
        socket: ws,
        subscribeTimes: [],
        subscribed: 0,
        pings: 0,
        silent: false,
        closed: false,
        idleTimer: null,
      };
      this.connections.push(conn);
      this.armIdleCut(conn);
      ws.on('message', (data: Buffer) => this.onControl(conn, data.toString('utf8')));
      ws.on('error', () => undefined);
      ws.on('close', () => {
        conn.closed = true;
        if (conn.idleTimer) clearTimeout(conn.idleTimer);
      });
    });
  }

  private reply(c: FakeBybitConnection, body: Record<string, unknown>): void {
    if (!c.silent) this.send(c, JSON.stringify(body));
  }

  /** Bybit's `op` requests on a public connection. */
  private onControl(c: FakeBybitConnection, text: string): void {
    let msg: { op?: unknown; args?: unknown; req_id?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      this.reply(c, {
        success: false,
        ret_msg: 'Failed to decode incoming data',
        conn_id: c.connId,
        req_id: '',
        op: '',
      });
      return;
    }
    const reqId = typeof msg.req_id === 'string' ? msg.req_id : '';
    const base = { conn_id: c.connId, req_id: reqId };
    if (msg.op === 'ping') {
      c.pings += 1;
      if (c.silent) return;
      this.armIdleCut(c);
      // Spot's pong has no req_id; linear's carries the request's (empty when none).
      const pong =
        c.market === 'spot'
          ? { success: true, ret_msg: 'pong', conn_id: c.connId, op: 'ping' }
          : { success: true, ret_msg: 'pong', ...base, op: 'ping' };
      this.reply(c, pong);
      return;
    }
    const args = Array.isArray(msg.args) ? msg.args.filter((a): a is string => typeof a === 'string') : [];
    if (msg.op === 'subscribe') {
      c.subscribeTimes.push(Date.now());
      this.subscribe(c, args, base);
      return;
    }
    if (msg.op === 'unsubscribe') {
      for (const a of args) c.topics.delete(a);
      this.reply(c, { success: true, ret_msg: '', ...base, op: 'unsubscribe' });
      return;
    }
    this.reply(c, {
      success: false,
      ret_msg: `Illegal operation: ${String(msg.op)}`,
      ...base,
      op: String(msg.op),
    });
  }

  private subscribe(c: FakeBybitConnection, args: readonly string[], base: Record<string, string>): void {
    const fail = (ret_msg: string): void =>
      this.reply(c, { success: false, ret_msg, ...base, op: 'subscribe' });
    if (args.length === 0) return fail('args is empty');
    if (c.market === 'spot' && args.length > SPOT_ARGS_PER_REQUEST)
      return fail(`args size >${SPOT_ARGS_PER_REQUEST}`);
    const chars = JSON.stringify([...c.topics, ...args]).length;
    if (chars > ARGS_CHARS_PER_CONNECTION)
      return fail(`args length ${chars} over ${ARGS_CHARS_PER_CONNECTION}`);
    const refused: string[] = [];
    for (const topic of args) {
      const m = /^(kline\.1|orderbook\.1)\.([A-Z0-9-]+)$/.exec(topic);
      if (!m || !this.isListed(c.market, m[2] ?? '')) refused.push(topic);
      else if (c.topics.has(topic)) return fail(`error:already subscribed,topic:${topic}`);
    }
    // The topics that exist are subscribed; the reply names the ones that do not.
    for (const topic of args) if (!refused.includes(topic)) c.topics.add(topic);
    if (refused.length > 0) return fail(`Invalid symbol :[${refused.join(',')}]`);
    c.subscribed += 1;
    this.reply(c, {
      success: true,
      ret_msg: c.market === 'spot' ? 'subscribe' : '',
      ...base,
      op: 'subscribe',
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const at = Date.now();
    const entry: FakeBybitRequest = {
      path: url.pathname,
      params: url.searchParams,
      at,
      status: 0,
      rateLimited: false,
    };
    this.restRequests.push(entry);
    const r = this.answer(req.method ?? 'GET', url, at);
    entry.status = r.status;
    entry.rateLimited = r.status === 403 || r.body.includes('"retCode":10006');
    res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
    res.end(r.body);
  }

  private answer(method: string, url: URL, at: number): Reply {
    const json = (retCode: number, retMsg: string, result: unknown, headers = {}): Reply => ({
      status: 200,
      headers,
      body: JSON.stringify({ retCode, retMsg, result, retExtInfo: {}, time: at }),
    });
    // HTTP IP limit: 600 requests in any 5 s; breaking it bans the IP.
    const recent = this.restRequests.filter((r) => r.at > at - 5_000).length;
    if (recent > 600) this.bannedUntil = at + (this.opts.ipBanMs ?? 600_000);
    if (at < this.bannedUntil)
      return { status: 403, headers: { 'content-type': 'text/plain' }, body: 'access too frequent' };
    if (method !== 'GET') return { status: 404, headers: {}, body: '' };
    const p = url.searchParams;
    const category = p.get('category');
    if (url.pathname === '/v5/market/kline') {
      const wait = this.rateLimited.shift();
      if (wait !== undefined) {
        return json(
          10006,
          'Too many visits!',
          {},
          {
            'X-Bapi-Limit': '10',
            'X-Bapi-Limit-Status': '0',
            'X-Bapi-Limit-Reset-Timestamp': String(at + wait),
          },
        );
      }
      if (category !== 'spot' && category !== 'linear') return json(10001, 'Illegal category', {});
      return this.klines(category, p, json);
    }
    if (url.pathname === '/v5/market/instruments-info') {
      if (category !== 'spot' && category !== 'linear') return json(10001, 'Illegal category', {});
      return this.instruments(category, p, json);
    }
    return { status: 404, headers: {}, body: '' };
  }

  private klines(
    category: FakeBybitMarket,
    p: URLSearchParams,
    json: (code: number, msg: string, result: unknown) => Reply,
  ): Reply {
    const symbol = p.get('symbol') ?? '';
    if (!this.isListed(category, symbol)) return json(10001, 'Not supported symbols', {});
    if (p.get('interval') !== '1') return json(10001, 'Invalid interval', {});
    const limit = p.has('limit') ? Number(p.get('limit')) : KLINE_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > KLINE_MAX_LIMIT)
      return json(10001, 'Invalid limit', {});
    // Bybit also returns the minute still open.
    const current = Math.floor(this.opts.now() / MINUTE) * MINUTE;
    const end = Math.min(
      p.has('end') ? Math.floor(Number(p.get('end')) / MINUTE) * MINUTE : current,
      current,
    );
    const start = p.has('start')
      ? Math.ceil(Number(p.get('start')) / MINUTE) * MINUTE
      : end - (limit - 1) * MINUTE;
    const list: string[][] = [];
    // Newest first; of a longer range, the newest `limit` minutes.
    for (let t = end; t >= start && list.length < limit; t -= MINUTE) {
      const v = this.candle(category, symbol, t);
      list.push([String(t), v.open, v.high, v.low, v.close, v.volume, v.turnover]);
    }
    return json(0, 'OK', { symbol, category, list });
  }

  private instruments(
    category: FakeBybitMarket,
    p: URLSearchParams,
    json: (code: number, msg: string, result: unknown) => Reply,
  ): Reply {
    const symbols = [...this.listed[category]].filter((s) => !this.unknownSymbols.has(s)).sort();
    const entry = (s: string): Record<string, unknown> => ({
      symbol: s,
      ...(category === 'linear' ? { contractType: 'LinearPerpetual' } : {}),
      status: 'Trading',
      baseCoin: s.replace(/USDT$/, ''),
      quoteCoin: 'USDT',
    });
    if (category === 'spot') return json(0, 'OK', { category, list: symbols.map(entry) });
    const limit = p.has('limit') ? Number(p.get('limit')) : LINEAR_INSTRUMENTS_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > LINEAR_INSTRUMENTS_MAX_LIMIT) {
      return json(10001, 'Invalid limit', {});
    }
    const from = Number(p.get('cursor') ?? '0') || 0;
    const page = symbols.slice(from, from + limit);
    const next = from + limit < symbols.length ? String(from + limit) : '';
    return json(0, 'OK', { category, list: page.map(entry), nextPageCursor: next });
  }
}
