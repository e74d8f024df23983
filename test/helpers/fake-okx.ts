/**
 * A local fake of OKX v5 on one 127.0.0.1 port, speaking OKX's documented formats (docs/venues/okx.md):
 * WebSockets at `/ws/v5/public` (`tickers`) and `/ws/v5/business` (`candle1m`) with the `subscribe` op,
 * its `subscribe`/`error` replies, text `ping`/`pong`, the `notice` 64008 before a service upgrade and the
 * close 4004 after 30 s without a client message; REST `GET /api/v5/market/candles` (the latest 1,440
 * minutes), `GET /api/v5/market/history-candles` and `GET /api/v5/public/instruments`, in the
 * `{"code","msg","data"}` envelope, newest first, `after`/`before` exclusive.
 *
 * Limits it can observe, enforced the way OKX answers them: REST per endpoint per 2 s (HTTP 429 with
 * code 50011), 480 subscribe requests per connection per hour (error 60014), subscribe frames over 64 KB
 * (close 1009), and 3 connection requests per second: past it the upgrade is refused with HTTP 429 (OKX
 * does not document the answer; 429 is the fake's choice). Refused requests are still listed.
 *
 * Candle values are a deterministic function of instId and minute on the test's market clock `now()`;
 * rate windows and connection times are real time.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { CandleValues } from '../../src/marketdata/kit/venue.js';
import type { FakeVenueServer, RestCall } from '../conformance/sources/venue-harness.js';

export const MINUTE = 60_000;

export const PUBLIC_PATH = '/ws/v5/public';
export const BUSINESS_PATH = '/ws/v5/business';
export const CANDLES_PATH = '/api/v5/market/candles';
const HISTORY_CANDLES_PATH = '/api/v5/market/history-candles';
export const INSTRUMENTS_PATH = '/api/v5/public/instruments';

/** Base currency per swap contract (BTC-USDT-SWAP's `ctVal` is 0.01 BTC); the same for every swap here. */
export const CONTRACT_VALUE = 0.01;

/** Requests per endpoint per `REST_WINDOW_MS` (per IP; instruments also per instType). */
const REST_LIMITS: Readonly<Record<string, number>> = {
  [CANDLES_PATH]: 40,
  [HISTORY_CANDLES_PATH]: 20,
  [INSTRUMENTS_PATH]: 20,
};
const REST_WINDOW_MS = 2_000;
/** Weights of the calls in the tightest documented budget the suite checks (40 per 2 s). */
const REST_WEIGHT: Readonly<Record<string, number>> = {
  [CANDLES_PATH]: 1,
  [HISTORY_CANDLES_PATH]: 2,
  [INSTRUMENTS_PATH]: 2,
};
const MAX_LIMIT: Readonly<Record<string, number>> = { [CANDLES_PATH]: 300, [HISTORY_CANDLES_PATH]: 100 };
/** `candles` serves "the latest 1,440 data entries". */
const CANDLES_REACH = 1_440;
const CONNECTIONS_PER_WINDOW = 3;
const CONNECTIONS_WINDOW_MS = 1_000;
const SUBSCRIBES_PER_WINDOW = 480;
const SUBSCRIBES_WINDOW_MS = 3_600_000;
/** "The total length of multiple channels cannot exceed 64 KB." */
const MAX_FRAME = 64 * 1024;

const SPOT_RE = /^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$/;
const SWAP_RE = /^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}(_[A-Z0-9]{1,10})?-SWAP$/;

export type FakeOkxMarket = 'spot' | 'swap';

/** `okx:<market>:<instId>` → instId. */
export function instIdOf(key: string): string {
  const parts = key.split(':');
  if (parts.length !== 3 || parts[0] !== 'okx') throw new Error(`not an okx key: ${key}`);
  return parts[2] ?? '';
}

function marketOf(instId: string): FakeOkxMarket {
  return instId.endsWith('-SWAP') ? 'swap' : 'spot';
}

/** A candle as OKX writes it: `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`. */
export type OkxCandleRow = readonly [string, string, string, string, string, string, string, string, string];

interface Numbers {
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  /** Base currency traded. */
  readonly base: number;
}

function seedOf(instId: string): number {
  let seed = 0;
  for (const ch of instId) seed = (seed * 31 + ch.charCodeAt(0)) % 1000;
  return seed;
}

/** The closed minute of `instId` at `openTime` when it has trades. Prices have 2 decimals, volume 2. */
function tradedNumbers(instId: string, openTime: number): Numbers {
  const minute = Math.floor(openTime / MINUTE);
  const o = 100 + seedOf(instId) / 10 + (minute % 97);
  const c = o + ((minute % 5) - 2) * 0.25;
  // Whole contracts on swaps (base = contracts * 0.01), any base amount on spot.
  const base = (100 + (minute % 13) * 10) * CONTRACT_VALUE;
  return { o, h: Math.max(o, c) + 0.5, l: Math.min(o, c) - 0.5, c, base };
}

function rowOf(instId: string, openTime: number, n: Numbers, confirmed: boolean): OkxCandleRow {
  const quote = (n.base * (n.o + n.c)) / 2;
  const base = n.base.toFixed(2);
  const quoteText = quote.toFixed(4);
  const spot = marketOf(instId) === 'spot';
  const vol = spot ? base : String(Math.round(n.base / CONTRACT_VALUE));
  const volCcy = spot ? quoteText : base;
  return [
    String(openTime),
    n.o.toFixed(2),
    n.h.toFixed(2),
    n.l.toFixed(2),
    n.c.toFixed(2),
    vol,
    volCcy,
    quoteText,
    confirmed ? '1' : '0',
  ];
}

export interface FakeOkxConnection {
  readonly id: number;
  /** `public` or `business`. */
  readonly kind: 'public' | 'business';
  readonly socket: WebSocket;
  /** `channel:instId` subscribed. */
  readonly subs: Set<string>;
  /** Real times of subscribe requests received (refused ones too). */
  readonly subscribeTimes: number[];
  pings: number;
  /** Sends nothing (no replies, pongs or pushes) until `speak()`. */
  silent: boolean;
  /** Real time of the last frame from the client. */
  lastReceived: number;
  closed: boolean;
  closeCode: number | null;
  closedBy: 'client' | 'server' | null;
}

export interface FakeOkxOptions {
  /** Market clock: which minute is open, what REST has, ticker times. */
  readonly now: () => number;
  /** From the 64008 notice to the server's close of each socket (OKX: 60 s), ms. */
  readonly noticeCloseMs?: number;
  /** No frame from the client for this long closes the socket with 4004 (OKX: 30 s), ms. */
  readonly idleCloseMs?: number;
  /**
   * Push the open minute's candle (confirm 0) on every candle subscription and a ticker on every tickers
   * subscription this often (0 = never), ms: the traffic of a live market.
   */
  readonly openUpdateMs?: number;
  /** First minute history-candles has, epoch ms (market clock). @defaultValue 30 days before start */
  readonly listedSince?: number;
  /** Instrument keys (`okx:spot:BTC-USDT`) the venue lists from the start; `list()` adds more. */
  readonly listed?: readonly string[];
}

export class FakeOkx implements Omit<FakeVenueServer, 'createSource'> {
  readonly connections: FakeOkxConnection[] = [];
  /** instIds that `public/instruments` lists and subscribe accepts (minus `unknownSymbols`). */
  readonly listed = new Set<string>();
  readonly unknownSymbols = new Set<string>();
  readonly restCalls: RestCall[] = [];
  /** Real times of connection requests (upgrades), refused ones included. */
  readonly connectionTimes: number[] = [];
  /** Real times of connection requests refused for the per-second limit. */
  readonly refusedConnectionTimes: number[] = [];
  readonly limits = Object.freeze({
    restWeight: 40,
    restWindowMs: REST_WINDOW_MS,
    connections: CONNECTIONS_PER_WINDOW,
    connectionsWindowMs: CONNECTIONS_WINDOW_MS,
    subscribes: SUBSCRIBES_PER_WINDOW,
    subscribesWindowMs: SUBSCRIBES_WINDOW_MS,
  });
  private readonly zero = new Set<string>();
  /** Real times of REST calls per rate-limit bucket (path, or path + instType). */
  private readonly restTimes = new Map<string, number[]>();
  private readonly wss: WebSocketServer;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly opener: NodeJS.Timeout | null;
  private readonly listedSince: number;
  /** Penalties (ms) of the next candle calls, set by `rateLimitNext`. */
  private readonly penalties: number[] = [];
  private rateLimitedUntil = 0;
  private nextId = 1;

  private constructor(
    private readonly server: Server,
    private readonly opts: FakeOkxOptions,
  ) {
    this.listedSince = opts.listedSince ?? opts.now() - 30 * 24 * 60 * MINUTE;
    this.list(opts.listed ?? []);
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    const idleMs = opts.idleCloseMs ?? 30_000;
    this.sweeper = setInterval(() => this.closeIdle(idleMs), Math.min(1_000, Math.max(50, idleMs / 4)));
    this.opener = opts.openUpdateMs ? setInterval(() => this.pushLive(), opts.openUpdateMs) : null;
  }

  static async start(opts: FakeOkxOptions): Promise<FakeOkx> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return new FakeOkx(server, opts);
  }

  private get base(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The public socket's URL (`ws_url`). */
  get wsUrl(): string {
    return `ws://${this.base}${PUBLIC_PATH}`;
  }

  /** The business socket's URL (`business_ws_url`). */
  get businessWsUrl(): string {
    return `ws://${this.base}${BUSINESS_PATH}`;
  }

  /** The REST base (`rest_url`). */
  get restUrl(): string {
    return `http://${this.base}`;
  }

  /** `market_data.sources.okx` pointing here. */
  get settings(): Readonly<Record<string, string>> {
    return { ws_url: this.wsUrl, business_ws_url: this.businessWsUrl, rest_url: this.restUrl };
  }

  get openConnections(): FakeOkxConnection[] {
    return this.connections.filter((c) => !c.closed);
  }

  get openSockets(): number {
    return this.openConnections.length;
  }

  get subscribeTimes(): ReadonlyMap<number, readonly number[]> {
    return new Map(this.connections.map((c) => [c.id, c.subscribeTimes]));
  }

  /** List the instIds of these keys (the venue has them). */
  list(keys: readonly string[]): void {
    for (const k of keys) this.listed.add(instIdOf(k));
  }

  private known(instId: string): boolean {
    return this.listed.has(instId) && !this.unknownSymbols.has(instId);
  }

  /** The candle row OKX has for `instId`'s minute at `openTime` on the market clock (open one: confirm 0). */
  row(instId: string, openTime: number): OkxCandleRow {
    const current = Math.floor(this.opts.now() / MINUTE) * MINUTE;
    if (openTime >= current) return this.openRow(instId, openTime);
    return rowOf(instId, openTime, this.numbers(instId, openTime), true);
  }

  /** A minute still open: so far its open price only and part of its volume (confirm 0). */
  private openRow(instId: string, openTime: number): OkxCandleRow {
    const n = this.numbers(instId, openTime);
    return rowOf(instId, openTime, { o: n.o, h: n.o, l: n.o, c: n.o, base: n.base / 2 }, false);
  }

  /**
   * A minute without trades: OKX gives it o = h = l = c = the previous close and zero volume ("when there
   * is no transaction, the opening high and closing low default take the closing price of the previous
   * cycle").
   */
  private numbers(instId: string, openTime: number): Numbers {
    if (!this.zero.has(`${instId}:${openTime}`)) return tradedNumbers(instId, openTime);
    const prev = this.numbers(instId, openTime - MINUTE).c;
    return { o: prev, h: prev, l: prev, c: prev, base: 0 };
  }

  canonical(key: string, openTime: number): CandleValues | null {
    const instId = instIdOf(key);
    const r = rowOf(instId, openTime, this.numbers(instId, openTime), true);
    return {
      openTime,
      open: Number(r[1]),
      high: Number(r[2]),
      low: Number(r[3]),
      close: Number(r[4]),
      volumeBase: Number(marketOf(instId) === 'swap' ? r[6] : r[5]),
      volumeQuote: Number(r[7]),
    };
  }

  zeroTrade(key: string, openTime: number): void {
    this.zero.add(`${instIdOf(key)}:${openTime}`);
  }

  private send(kind: 'public' | 'business', sub: string, text: string): number {
    let n = 0;
    for (const c of this.openConnections) {
      if (c.silent || c.kind !== kind || !c.subs.has(sub)) continue;
      c.socket.send(text);
      n += 1;
    }
    return n;
  }

  private candlePush(instId: string, row: OkxCandleRow): string {
    return JSON.stringify({ arg: { channel: 'candle1m', instId }, data: [row] });
  }

  pushClose(key: string, openTime: number): number {
    const instId = instIdOf(key);
    const row = rowOf(instId, openTime, this.numbers(instId, openTime), true);
    return this.send('business', `candle1m:${instId}`, this.candlePush(instId, row));
  }

  pushOpen(key: string, openTime: number): number {
    return this.pushOpenOf(instIdOf(key), openTime);
  }

  private pushOpenOf(instId: string, openTime: number): number {
    return this.send(
      'business',
      `candle1m:${instId}`,
      this.candlePush(instId, this.openRow(instId, openTime)),
    );
  }

  pushQuote(key: string, bid: string, ask: string): number {
    return this.pushQuoteOf(instIdOf(key), bid, ask);
  }

  private pushQuoteOf(instId: string, bid: string, ask: string): number {
    const data = {
      instType: marketOf(instId) === 'swap' ? 'SWAP' : 'SPOT',
      instId,
      last: bid,
      lastSz: '0.1',
      askPx: ask,
      askSz: '2',
      bidPx: bid,
      bidSz: '1',
      open24h: bid,
      high24h: ask,
      low24h: bid,
      volCcy24h: '1000',
      vol24h: '10',
      sodUtc0: bid,
      sodUtc8: bid,
      ts: String(this.opts.now()),
    };
    return this.send(
      'public',
      `tickers:${instId}`,
      JSON.stringify({ arg: { channel: 'tickers', instId }, data: [data] }),
    );
  }

  /** A live market's traffic: the open minute's candle on every candle subscription, a ticker on every tickers one. */
  private pushLive(): void {
    const current = Math.floor(this.opts.now() / MINUTE) * MINUTE;
    const subs = new Set(this.openConnections.flatMap((c) => [...c.subs]));
    for (const sub of subs) {
      const [channel = '', instId = ''] = sub.split(':');
      if (channel === 'candle1m') this.pushOpenOf(instId, current);
      if (channel === 'tickers') {
        const mid = this.numbers(instId, current).o;
        this.pushQuoteOf(instId, (mid - 0.05).toFixed(2), (mid + 0.05).toFixed(2));
      }
    }
  }

  dropAll(): void {
    for (const c of this.openConnections) {
      c.closedBy = 'server';
      c.socket.terminate();
    }
  }

  /** OKX's notice 60 s before a service upgrade, on every socket; each is closed `noticeCloseMs` later. */
  serverClose(): void {
    const delay = this.opts.noticeCloseMs ?? 1_000;
    for (const c of this.openConnections) {
      if (c.silent) continue;
      c.socket.send(
        JSON.stringify({
          event: 'notice',
          code: '64008',
          msg: 'The connection will soon be closed for a service upgrade. Please reconnect.',
          connId: connId(c.id),
        }),
      );
      this.later(delay, () => {
        if (c.closed) return;
        c.closedBy = 'server';
        c.socket.close(1001, 'service upgrade');
      });
    }
  }

  /** The sockets open now send nothing (no replies, no pongs, no pushes) until `speak()`; TCP stays up. */
  goSilent(): void {
    for (const c of this.openConnections) c.silent = true;
  }

  speak(): void {
    for (const c of this.connections) c.silent = false;
  }

  /** The next candle call gets 429 / 50011, and so does every candle call for `retryAfterMs` after it. */
  rateLimitNext(retryAfterMs: number): void {
    this.penalties.push(retryAfterMs);
  }

  async waitForSockets(n: number, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.openConnections.filter((c) => c.subs.size > 0).length < n) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${n} subscribed sockets (have ${this.openSockets} open)`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    if (this.opener) clearInterval(this.opener);
    for (const t of this.timers) clearTimeout(t);
    for (const c of this.openConnections) c.socket.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private closeIdle(idleMs: number): void {
    const now = Date.now();
    for (const c of this.openConnections) {
      if (c.silent || now - c.lastReceived < idleMs) continue;
      c.closedBy = 'server';
      c.socket.close(4004, 'No data received in 30s');
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const refuse = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (path !== PUBLIC_PATH && path !== BUSINESS_PATH) return refuse('404 Not Found');
    const now = Date.now();
    const recent = this.connectionTimes.filter((t) => now - t < CONNECTIONS_WINDOW_MS).length;
    this.connectionTimes.push(now);
    if (recent >= CONNECTIONS_PER_WINDOW) {
      this.refusedConnectionTimes.push(now);
      return refuse('429 Too Many Requests');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: FakeOkxConnection = {
        id: this.nextId++,
        kind: path === PUBLIC_PATH ? 'public' : 'business',
        socket: ws,
        subs: new Set(),
        subscribeTimes: [],
        pings: 0,
        silent: false,
        lastReceived: Date.now(),
        closed: false,
        closeCode: null,
        closedBy: null,
      };
      this.connections.push(conn);
      ws.on('message', (data: Buffer) => this.onFrame(conn, data.toString('utf8')));
      ws.on('error', () => undefined);
      ws.on('close', (code) => {
        conn.closed = true;
        conn.closeCode = code;
        conn.closedBy ??= 'client';
      });
    });
  }

  private reply(conn: FakeOkxConnection, body: Record<string, unknown>): void {
    if (!conn.silent) conn.socket.send(JSON.stringify({ ...body, connId: connId(conn.id) }));
  }

  private onFrame(conn: FakeOkxConnection, text: string): void {
    conn.lastReceived = Date.now();
    if (text === 'ping') {
      conn.pings += 1;
      if (!conn.silent) conn.socket.send('pong');
      return;
    }
    let msg: { id?: unknown; op?: unknown; args?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return this.reply(conn, {
        event: 'error',
        code: '60012',
        msg: `Invalid request: ${text.slice(0, 100)}`,
      });
    }
    const id = typeof msg.id === 'string' ? { id: msg.id } : {};
    if (msg.op !== 'subscribe' && msg.op !== 'unsubscribe') {
      return this.reply(conn, { ...id, event: 'error', code: '60019', msg: `Invalid op: ${String(msg.op)}` });
    }
    const now = Date.now();
    conn.subscribeTimes.push(now);
    if (conn.subscribeTimes.filter((t) => now - t < SUBSCRIBES_WINDOW_MS).length > SUBSCRIBES_PER_WINDOW) {
      return this.reply(conn, { ...id, event: 'error', code: '60014', msg: 'Requests too frequent' });
    }
    if (!Array.isArray(msg.args) || msg.args.length === 0) {
      return this.reply(conn, { ...id, event: 'error', code: '60013', msg: 'Invalid args' });
    }
    for (const a of msg.args as unknown[]) this.onArg(conn, msg.op, a, id);
  }

  private onArg(conn: FakeOkxConnection, op: 'subscribe' | 'unsubscribe', a: unknown, id: object): void {
    const arg = (typeof a === 'object' && a !== null ? a : {}) as { channel?: unknown; instId?: unknown };
    const channel = typeof arg.channel === 'string' ? arg.channel : '';
    const instId = typeof arg.instId === 'string' ? arg.instId : '';
    const candle = channel.startsWith('candle');
    if (conn.kind === 'public' && candle) {
      return this.reply(conn, {
        ...id,
        event: 'error',
        code: '64001',
        msg: "This channel has been migrated to the '/business' URL. Please subscribe using the new URL.",
      });
    }
    if (conn.kind === 'business' && channel === 'tickers') {
      return this.reply(conn, {
        ...id,
        event: 'error',
        code: '64002',
        msg: 'This channel is not supported by "/business" URL. Please use "/public" URL(for public channels).',
      });
    }
    const served = conn.kind === 'business' ? channel === 'candle1m' : channel === 'tickers';
    if (!served || !this.known(instId)) {
      return this.reply(conn, {
        ...id,
        event: 'error',
        code: '60018',
        msg: `Wrong URL or channel:${channel},instId:${instId} doesn't exist. Please use the correct URL, channel and parameters referring to API document.`,
      });
    }
    if (op === 'subscribe') conn.subs.add(`${channel}:${instId}`);
    else conn.subs.delete(`${channel}:${instId}`);
    this.reply(conn, { ...id, event: op, arg: { channel, instId } });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const at = Date.now();
    const limit = REST_LIMITS[path];
    const counted = req.method === 'GET' && limit !== undefined;
    const reply = (status: number, body: unknown): void => {
      if (counted) {
        const rateLimited = (body as { code?: unknown }).code === '50011';
        this.restCalls.push({ at, path, weight: REST_WEIGHT[path] ?? 1, status, rateLimited });
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!counted || limit === undefined) {
      return reply(404, { code: '50005', msg: 'API endpoint is inactive or unavailable.', data: [] });
    }
    const bucket = path === INSTRUMENTS_PATH ? `${path}?${url.searchParams.get('instType') ?? ''}` : path;
    const times = (this.restTimes.get(bucket) ?? []).filter((t) => at - t < REST_WINDOW_MS);
    times.push(at);
    this.restTimes.set(bucket, times);
    const tooMany = (): void => reply(429, { code: '50011', msg: 'Too Many Requests', data: [] });
    if (times.length > limit) return tooMany();
    if (path === INSTRUMENTS_PATH) return this.instruments(url.searchParams, reply);
    const penalty = this.penalties.shift();
    if (penalty !== undefined) {
      this.rateLimitedUntil = at + penalty;
      return tooMany();
    }
    if (at < this.rateLimitedUntil) return tooMany();
    this.candles(path, url.searchParams, reply);
  }

  private instruments(p: URLSearchParams, reply: (status: number, body: unknown) => void): void {
    const type = p.get('instType');
    if (type !== 'SPOT' && type !== 'SWAP') {
      return reply(400, { code: '51000', msg: 'Parameter instType error', data: [] });
    }
    const re = type === 'SPOT' ? SPOT_RE : SWAP_RE;
    const data = [...this.listed]
      .filter((i) => re.test(i) && this.known(i))
      .map((instId) => {
        const [base = '', quote = ''] = instId.split('-');
        return {
          instType: type,
          instId,
          baseCcy: type === 'SPOT' ? base : '',
          quoteCcy: type === 'SPOT' ? quote : '',
          settleCcy: type === 'SWAP' ? quote : '',
          ctVal: type === 'SWAP' ? String(CONTRACT_VALUE) : '',
          ctValCcy: type === 'SWAP' ? base : '',
          state: 'live',
        };
      });
    reply(200, { code: '0', msg: '', data });
  }

  private candles(path: string, p: URLSearchParams, reply: (status: number, body: unknown) => void): void {
    const instId = p.get('instId') ?? '';
    if (!instId) return reply(400, { code: '50014', msg: 'Parameter instId can not be empty.', data: [] });
    if ((p.get('bar') ?? '1m') !== '1m')
      return reply(400, { code: '51000', msg: 'Parameter bar error', data: [] });
    const limit = Math.min(Number(p.get('limit') ?? 100), MAX_LIMIT[path] ?? 100);
    if (!Number.isInteger(limit) || limit < 1) {
      return reply(400, { code: '51000', msg: 'Parameter limit error', data: [] });
    }
    if (!this.known(instId))
      return reply(200, { code: '51001', msg: "Instrument ID doesn't exist.", data: [] });
    const current = Math.floor(this.opts.now() / MINUTE) * MINUTE;
    const oldest = path === CANDLES_PATH ? current - (CANDLES_REACH - 1) * MINUTE : this.listedSince;
    // `after`: rows older than it; `before`: rows newer than it. Both exclusive; newest first.
    const after = p.has('after') ? Number(p.get('after')) : Infinity;
    const before = p.has('before') ? Number(p.get('before')) : -Infinity;
    const rows: OkxCandleRow[] = [];
    const newest = Math.min(current, Math.ceil(after / MINUTE) * MINUTE - MINUTE);
    for (let t = newest; t >= oldest && t > before && rows.length < limit; t -= MINUTE) {
      rows.push(this.row(instId, t));
    }
    reply(200, { code: '0', msg: '', data: rows });
  }
}

function connId(id: number): string {
  return id.toString(16).padStart(8, '0');
}
