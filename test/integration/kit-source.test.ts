/**
 * The kit's pieces no Binance test reaches, against a small test venue on loopback ("kitv"): subscribe
 * frames (sent after every open, paced by the subscribe budget), the text heartbeat, the symbol check at
 * start (unknown symbols rejected, a list that cannot be had does not block the start), a subscription
 * refused at run time, the venue's reconnect notice, and a REST range that includes the still-open minute.
 *
 * The test venue's protocol: subscribe `{"op":"subscribe","arg":"<SYM>"}` answered
 * `{"op":"subscribe","arg":"<SYM>","ok":true|false}`; text ping `ping` answered `pong`; candles
 * `{"arg":"<SYM>","confirm":bool,"t":<open ms>,"o","h","l","c","v"}`; quotes `{"arg":"<SYM>","bid","ask"}`;
 * notice `{"event":"restart"}`; REST `GET /symbols` and `GET /candles?symbol&from&to` (newest first,
 * the open minute included, `confirm` per row).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { ConfigError } from '../../src/util/errors.js';
import { classifyHttp, parseJsonBody } from '../../src/marketdata/kit/rest-call.js';
import { createVenueSource, type KitSource } from '../../src/marketdata/kit/source.js';
import type {
  RestOutcome,
  RestResponse,
  RestRow,
  VenueAdapter,
  VenueInstrument,
  VenueMessage,
} from '../../src/marketdata/kit/venue.js';
import type { SourceEvent } from '../../src/marketdata/types.js';

const M = 60_000;
const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(check: () => boolean, label: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await delay(5);
  }
}

/** The test venue's candle of `symbol` at `t` (a function of the minute). */
function price(symbol: string, t: number): number {
  return 100 + symbol.length + ((t / M) % 50);
}

interface Conn {
  readonly socket: WebSocket;
  readonly frames: { text: string; at: number }[];
  silent: boolean;
  closed: boolean;
}

class FakeVenue {
  readonly conns: Conn[] = [];
  readonly rest: { path: string; at: number }[] = [];
  listed = new Set(['AAA', 'BBB', 'CCC', 'DDD', 'EEE']);
  /** Listed, but a subscription is refused. */
  refused = new Set<string>();
  symbolsStatus = 200;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

  private constructor(
    private readonly server: Server,
    private readonly now: () => number,
  ) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws));
    });
  }

  static async start(now: () => number): Promise<FakeVenue> {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return new FakeVenue(server, now);
  }

  get base(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  open(): Conn[] {
    return this.conns.filter((c) => !c.closed);
  }

  send(obj: unknown): void {
    for (const c of this.open()) if (!c.silent) c.socket.send(JSON.stringify(obj));
  }

  candle(symbol: string, t: number, confirm = true): void {
    const p = price(symbol, t);
    this.send({ arg: symbol, confirm, t, o: p, h: p + 1, l: p - 1, c: p, v: 2 });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private onSocket(ws: WebSocket): void {
    const conn: Conn = { socket: ws, frames: [], silent: false, closed: false };
    this.conns.push(conn);
    ws.on('close', () => (conn.closed = true));
    ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      conn.frames.push({ text, at: Date.now() });
      if (conn.silent) return;
      if (text === 'ping') return ws.send('pong');
      const m = JSON.parse(text) as { op: string; arg: string };
      const ok = this.listed.has(m.arg) && !this.refused.has(m.arg);
      ws.send(JSON.stringify({ op: 'subscribe', arg: m.arg, ok }));
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.rest.push({ path: url.pathname, at: Date.now() });
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/symbols') {
      if (this.symbolsStatus !== 200) return reply(this.symbolsStatus, { error: 'busy' });
      return reply(200, { symbols: [...this.listed] });
    }
    const symbol = url.searchParams.get('symbol') ?? '';
    const from = Number(url.searchParams.get('from'));
    const current = Math.floor(this.now() / M) * M;
    const rows: unknown[] = [];
    // Newest first, past the range up to the still-open minute (marked confirmed, as a careless venue
    // might): the kit keeps only the range's closed minutes.
    for (let t = current; t >= from; t -= M) {
      const p = price(symbol, t);
      rows.push({ t, o: p, h: p + 1, l: p - 1, c: p, v: 2, confirm: true });
    }
    reply(200, rows);
  }
}

interface Urls {
  readonly ws: string;
  readonly rest: string;
}

type KitvInstrument = VenueInstrument;

const candleMsg = (j: Record<string, unknown>): Extract<VenueMessage, { type: 'candle' }> => {
  const t = Number(j['t']);
  const values = {
    openTime: t,
    open: Number(j['o']),
    high: Number(j['h']),
    low: Number(j['l']),
    close: Number(j['c']),
    volumeBase: Number(j['v']),
    volumeQuote: null,
  };
  return { type: 'candle', symbol: String(j['arg']), closed: j['confirm'] === true, values };
};

function parseRows(r: RestResponse): RestOutcome<readonly RestRow[]> {
  const http = classifyHttp(r);
  if (http) return http;
  const body = parseJsonBody(r, 'candles');
  if (body.kind === 'failed') return body;
  const rows = (body.json as Record<string, unknown>[]).map((j): RestRow => {
    return { ok: true, values: candleMsg(j).values, closed: j['confirm'] === true };
  });
  return { kind: 'ok', value: rows };
}

/** The test venue's adapter; `subscribes` per 300 ms on one connection. */
function adapter(subscribes: number, serverCloseIsNotice = false): VenueAdapter<KitvInstrument, Urls> {
  return {
    venue: 'kitv',
    serverCloseIsNotice,
    markets: ['spot'],
    limits: {
      rest: [{ count: 100, windowMs: 1000 }],
      connections: { count: 50, windowMs: 1000 },
      subscribes: { count: subscribes, windowMs: 300 },
      topicsPerConnection: 50,
    },
    heartbeat: { kind: 'text', message: 'ping', intervalMs: 50 },
    parseInstrument: (key, where, marketId) => {
      const symbol = key.split(':')[2] ?? '';
      if (!/^[A-Z]{3}$/.test(symbol)) throw new ConfigError(where, `${key}: three letters`);
      return { spec: { instrumentKey: key, symbol, marketId }, market: 'spot', symbol };
    },
    sockets: (instruments, urls) => [
      {
        label: 'main',
        url: urls.ws,
        subscribe: instruments.map((i) => JSON.stringify({ op: 'subscribe', arg: i.symbol })),
        instruments,
        carriesCandles: true,
        carriesQuotes: true,
      },
    ],
    parseMessage: (text) => {
      if (text === 'pong') return { type: 'pong' };
      const j = JSON.parse(text) as Record<string, unknown>;
      if (j['event'] === 'restart') return { type: 'reconnect', reason: 'restart notice' };
      if (j['op'] === 'subscribe') {
        return j['ok'] === true
          ? { type: 'ack' }
          : { type: 'rejected', symbol: String(j['arg']), reason: 'subscription refused' };
      }
      if ('bid' in j) {
        return {
          type: 'quote',
          symbol: String(j['arg']),
          bid: Number(j['bid']),
          ask: Number(j['ask']),
          exchangeTsMs: null,
        };
      }
      return candleMsg(j);
    },
    history: {
      pageMinutes: 100,
      request: (i, from, to, urls) => ({
        url: `${urls.rest}/candles?symbol=${i.symbol}&from=${from}&to=${to}`,
        weight: 1,
      }),
      parse: parseRows,
    },
    symbols: {
      request: (_market, urls) => ({ url: `${urls.rest}/symbols`, weight: 5 }),
      parse: (r) => {
        const http = classifyHttp(r);
        if (http) return http;
        const body = parseJsonBody(r, 'symbols');
        if (body.kind === 'failed') return body;
        return { kind: 'ok', value: new Set((body.json as { symbols: string[] }).symbols) };
      },
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Started {
  readonly venue: FakeVenue;
  readonly source: KitSource;
  readonly events: SourceEvent[];
  clock: { t: number };
}

async function start(
  keys: readonly string[],
  opts: {
    subscribes?: number;
    since?: number;
    symbolsStatus?: number;
    serverCloseIsNotice?: boolean;
    reconnectBaseMs?: number;
  } = {},
): Promise<Started> {
  const clock = { t: T0 + 30_000 };
  const now = (): number => clock.t;
  const venue = await FakeVenue.start(now);
  venue.symbolsStatus = opts.symbolsStatus ?? 200;
  cleanups.push(() => venue.close());
  const source = createVenueSource(
    adapter(opts.subscribes ?? 100, opts.serverCloseIsNotice),
    { ws: `ws://${venue.base}/ws`, rest: `http://${venue.base}` },
    {
      instruments: keys,
      now,
      reconnectBaseMs: opts.reconnectBaseMs ?? 20,
      reconnectMaxMs: Math.max(100, opts.reconnectBaseMs ?? 0),
      silenceTimeoutMs: 300,
      lateGraceMs: 10 * M,
      gapCheckIntervalMs: 10,
      since: opts.since,
    },
  );
  const ac = new AbortController();
  const events: SourceEvent[] = [];
  const done = (async () => {
    for await (const ev of source.events(ac.signal)) events.push(ev);
  })();
  cleanups.push(async () => {
    ac.abort();
    await done;
  });
  return { venue, source, events, clock };
}

const candles = (s: Started): [string, number, string][] =>
  s.events.flatMap((e) => (e.kind === 'candle' ? [[e.candle.symbol, e.candle.tsOpen, e.candle.origin]] : []));
const rejected = (s: Started): SourceEvent[] => s.events.filter((e) => e.kind === 'rejected');
const subscribed = (c: { frames: { text: string }[] } | undefined): string[] =>
  (c?.frames ?? []).filter((f) => f.text !== 'ping').map((f) => (JSON.parse(f.text) as { arg: string }).arg);

describe('kit source against a small test venue', () => {
  it('an unknown symbol is rejected at start naming its config entry; the others are subscribed and served', async () => {
    const s = await start(['kitv:spot:AAA', 'kitv:spot:ZZZ', 'kitv:spot:BBB']);
    await waitFor(
      () => s.venue.open().length === 1 && subscribed(s.venue.conns[0]).length === 2,
      'subscribed',
    );
    expect(rejected(s)).toEqual([
      {
        kind: 'rejected',
        instrumentKey: 'kitv:spot:ZZZ',
        configKey: 'market_data.instruments[1]',
        reason: 'kitv does not list spot symbol ZZZ',
      },
    ]);
    expect(subscribed(s.venue.conns[0])).toEqual(['AAA', 'BBB']);
    s.clock.t = T0 + M + 100;
    s.venue.candle('AAA', T0);
    s.venue.candle('BBB', T0, false); // not closed: no candle
    s.venue.candle('BBB', T0);
    await waitFor(() => candles(s).length === 2, 'both candles');
    expect(candles(s)).toEqual([
      ['AAA', T0, 'ws'],
      ['BBB', T0, 'ws'],
    ]);
    expect(s.venue.rest.map((r) => r.path)).toEqual(['/symbols']);
  });

  it('a symbol list that cannot be had does not block the start: a few attempts, then every instrument is served', async () => {
    const s = await start(['kitv:spot:AAA', 'kitv:spot:ZZZ'], { symbolsStatus: 503 });
    const first = (): Conn | undefined => s.venue.conns[0];
    await waitFor(() => subscribed(first()).length === 2, 'served unchecked');
    expect(s.venue.rest.filter((r) => r.path === '/symbols')).toHaveLength(3);
    expect(subscribed(first())).toEqual(['AAA', 'ZZZ']);
    // ZZZ is refused on the socket instead: rejected at run time, AAA goes on.
    await waitFor(() => rejected(s).length === 1, 'rejected at run time');
    expect(rejected(s)).toEqual([
      {
        kind: 'rejected',
        instrumentKey: 'kitv:spot:ZZZ',
        configKey: 'market_data.instruments[1]',
        reason: 'main: subscription refused',
      },
    ]);
    s.clock.t = T0 + M + 100;
    s.venue.candle('AAA', T0);
    s.venue.candle('ZZZ', T0);
    await waitFor(() => candles(s).length === 1, 'AAA');
    await delay(50);
    expect(candles(s)).toEqual([['AAA', T0, 'ws']]);
  });

  it('subscribe frames are paced by the subscribe budget and sent again after every reconnect', async () => {
    const keys = ['AAA', 'BBB', 'CCC', 'DDD', 'EEE'].map((s) => `kitv:spot:${s}`);
    const s = await start(keys, { subscribes: 2 });
    await waitFor(() => subscribed(s.venue.conns[0]).length === 5, 'five subscribes', 5000);
    const first = s.venue.conns[0];
    const at = (first?.frames ?? []).filter((f) => f.text !== 'ping').map((f) => f.at);
    // Two per 300 ms: the third waits for the first to leave the window, the fifth for the third.
    expect((at[2] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(290);
    expect((at[4] ?? 0) - (at[2] ?? 0)).toBeGreaterThanOrEqual(290);
    for (const c of s.venue.open()) c.socket.terminate();
    await waitFor(() => subscribed(s.venue.conns[1]).length === 5, 'resubscribed', 5000);
    expect(subscribed(s.venue.conns[1])).toEqual(['AAA', 'BBB', 'CCC', 'DDD', 'EEE']);
  });

  it("text heartbeat: the venue's ping is sent and its pong keeps the socket; unanswered, the socket is replaced", async () => {
    const s = await start(['kitv:spot:AAA']);
    await waitFor(() => s.venue.open().length === 1, 'open');
    await delay(700); // over twice the silence timeout: only pongs keep it
    expect(s.venue.conns).toHaveLength(1);
    expect((s.venue.conns[0]?.frames ?? []).filter((f) => f.text === 'ping').length).toBeGreaterThan(5);
    const silentAt = Date.now();
    for (const c of s.venue.open()) c.silent = true;
    await waitFor(() => s.venue.open().length === 1 && s.venue.conns.length === 2, 'replaced', 3000);
    expect(Date.now() - silentAt).toBeLessThan(1500);
    const states = s.events.flatMap((e) => (e.kind === 'state' ? [e.state] : []));
    expect(states).toContain('DISCONNECTED');
    expect(s.events.find((e) => e.kind === 'state' && e.state === 'DISCONNECTED')).toMatchObject({
      reason: expect.stringMatching(/^main: silent: /) as unknown,
    });
  });

  it("the venue's reconnect notice replaces the socket at once; the fill after it never takes the open minute", async () => {
    const s = await start(['kitv:spot:AAA'], { since: T0 });
    await waitFor(() => s.venue.open().length === 1, 'open');
    // At 10:00:30 nothing is closed yet: nothing to fetch.
    await delay(50);
    expect(s.venue.rest.filter((r) => r.path === '/candles')).toEqual([]);
    s.venue.send({ arg: 'AAA', bid: 100.1, ask: 100.2 });
    await waitFor(() => s.events.some((e) => e.kind === 'tick'), 'a tick (STREAM)');
    s.clock.t = T0 + 2 * M + 10_000;
    s.venue.send({ event: 'restart' });
    await waitFor(() => s.venue.conns.length === 2 && s.venue.open().length === 1, 'replaced');
    await waitFor(() => candles(s).length === 2, '10:00 and 10:01 from REST');
    await delay(50);
    expect(candles(s)).toEqual([
      ['AAA', T0, 'rest'],
      ['AAA', T0 + M, 'rest'],
    ]);
    // One call, for [10:00, 10:02); the venue's rows for 10:02 (open) were not used.
    expect(s.venue.rest.filter((r) => r.path === '/candles')).toHaveLength(1);
    const reasons = s.events.flatMap((e) => (e.kind === 'state' ? [e.reason] : []));
    expect(reasons).toContain('main: restart notice');
    expect(s.source.stats().connects).toBe(2);
  });

  it("with serverCloseIsNotice, a close frame from the server is the venue's notice: reconnect at once, no backoff", async () => {
    // A 10 s backoff would time this out: only a planned reconnect is quick enough.
    const s = await start(['kitv:spot:AAA'], { serverCloseIsNotice: true, reconnectBaseMs: 10_000 });
    await waitFor(() => s.venue.open().length === 1, 'open');
    s.venue.send({ arg: 'AAA', bid: 100.1, ask: 100.2 });
    await waitFor(() => s.events.some((e) => e.kind === 'tick'), 'a tick (STREAM)');
    for (const c of s.venue.open()) c.socket.close(1001, 'going away');
    await waitFor(() => s.venue.conns.length === 2 && s.venue.open().length === 1, 'reconnected', 3000);
    const states = s.events.flatMap((e) => (e.kind === 'state' ? [[e.state, e.reason]] : []));
    expect(states).toContainEqual(['RECOVERING', 'main: closed by server (code 1001, going away)']);
    expect(states.map(([st]) => st)).not.toContain('DISCONNECTED');
  });
});
