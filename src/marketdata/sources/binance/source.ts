/**
 * The Binance market source: closed 1m candles (`<symbol>@kline_1m`, `x=true` only) and top of book
 * (`<symbol>@bookTicker`) from combined-stream WebSockets, one per market (spot, USD-M futures), with
 * REST klines filling every gap (after a reconnect, a skipped minute, a late closing message) under the
 * history-call limit. See ARCHITECTURE.md and the options in `options.ts`.
 *
 * `events(signal)` runs everything for one consumer: it yields from a bounded queue, pauses the sockets
 * when the consumer falls behind, never throws for the network or bad input (it reports `state`,
 * `throttle` and `invalid` notices), and on abort (or when the consumer stops iterating) closes the
 * sockets, clears its timers and returns.
 */
import type { MarketSource, SourceEvent, SourceNotice } from '../../types.js';
import { CandleSequencer } from './candle-sequencer.js';
import { StreamConnection } from './connection.js';
import { EventQueue } from './event-queue.js';
import { FeedStateTracker } from './feed-state.js';
import { HistoryClient } from './history.js';
import { HistoryLimiter } from './history-limiter.js';
import { parseBinanceMessage } from './messages.js';
import { toCandle, toTick } from './normalize.js';
import {
  BINANCE_MARKETS,
  resolveBinanceOptions,
  type BinanceInstrument,
  type BinanceMarket,
  type BinanceSourceOptions,
  type ResolvedBinanceOptions,
} from './options.js';

export type { BinanceSourceOptions } from './options.js';

/** Counters of a source since it was created (queue figures: of the latest `events()` run). */
export interface BinanceSourceStats {
  /** Events waiting for the consumer now. */
  readonly queued: number;
  /** Most events ever waiting at once. */
  readonly maxQueued: number;
  /** Times the sockets were paused because the consumer fell behind. */
  readonly pauses: number;
  /** Ticks and invalid-message notices dropped because the queue was full beyond twice its capacity. */
  readonly dropped: number;
  /** Messages and REST rows reported as invalid. */
  readonly invalid: number;
  /** Live closed klines dropped because their minute was already yielded. */
  readonly duplicates: number;
  /** WebSocket connections opened. */
  readonly connects: number;
  /** REST history calls made. */
  readonly historyCalls: number;
}

export interface BinanceSource extends MarketSource {
  stats(): BinanceSourceStats;
}

interface Counters {
  pauses: number;
  dropped: number;
  invalid: number;
  duplicatesBefore: number;
  connects: number;
  historyCalls: number;
}

interface RunView {
  readonly queue: EventQueue<SourceEvent>;
  readonly sequencers: readonly CandleSequencer[];
}

/** Longest `raw` kept in an invalid notice, characters. */
const RAW_MAX = 2000;

function clip(s: string): string {
  return s.length > RAW_MAX ? s.slice(0, RAW_MAX) : s;
}

function streamsOf(instruments: readonly BinanceInstrument[]): string[] {
  return instruments.flatMap((i) => [`${i.streamSymbol}@kline_1m`, `${i.streamSymbol}@bookTicker`]);
}

/** Create the source. Throws ConfigError for wrong options; never afterwards. */
export function createBinanceSource(opts: BinanceSourceOptions): BinanceSource {
  const o = resolveBinanceOptions(opts);
  const counters: Counters = {
    pauses: 0,
    dropped: 0,
    invalid: 0,
    duplicatesBefore: 0,
    connects: 0,
    historyCalls: 0,
  };
  let latest: RunView | null = null;
  return {
    name: 'binance',
    instruments: o.instruments.map((i) => i.spec),
    events: (signal) =>
      run(o, counters, signal, (view) => {
        latest = view;
      }),
    stats: () => {
      const view: RunView | null = latest;
      return {
        queued: view?.queue.size ?? 0,
        maxQueued: view?.queue.maxSeen ?? 0,
        pauses: counters.pauses,
        dropped: counters.dropped,
        invalid: counters.invalid,
        duplicates: counters.duplicatesBefore + (view?.sequencers.reduce((n, s) => n + s.duplicates, 0) ?? 0),
        connects: counters.connects,
        historyCalls: counters.historyCalls,
      };
    },
  };
}

async function* run(
  o: ResolvedBinanceOptions,
  counters: Counters,
  outer: AbortSignal,
  expose: (view: RunView) => void,
): AsyncGenerator<SourceEvent, void, undefined> {
  if (outer.aborted) return;
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  outer.addEventListener('abort', stop, { once: true });
  const signal = ac.signal;
  const log = o.logger;

  const connections = new Map<BinanceMarket, StreamConnection>();
  const queue = new EventQueue<SourceEvent>(o.queueCapacity, {
    onHigh: () => {
      counters.pauses += 1;
      for (const c of connections.values()) c.pause();
    },
    onLow: () => {
      for (const c of connections.values()) c.resume();
    },
  });
  const notice = (n: SourceNotice): void => {
    if (n.kind === 'invalid') counters.invalid += 1;
    if (!queue.offer(n, n.kind === 'invalid')) counters.dropped += 1;
  };

  // Throttle notices: the limiter (window full, Retry-After) and error backoff, reported as one flag.
  const throttledBy = { limiter: false, backoff: false };
  let throttleReported = false;
  const throttle = (by: keyof typeof throttledBy, throttled: boolean, waitMs: number): void => {
    throttledBy[by] = throttled;
    if (throttled) {
      throttleReported = true;
      notice({ kind: 'throttle', throttled: true, backoffMs: waitMs });
    } else if (throttleReported && !throttledBy.limiter && !throttledBy.backoff) {
      throttleReported = false;
      notice({ kind: 'throttle', throttled: false, backoffMs: 0 });
    }
  };
  const backoff = { baseMs: o.reconnectBaseMs, maxMs: o.reconnectMaxMs, jitter: o.reconnectJitter };
  const limiter = new HistoryLimiter({
    maxCalls: o.maxHistoryCallsPerMin,
    onThrottle: (t, ms) => throttle('limiter', t, ms),
  });
  const history = new HistoryClient({
    limiter,
    fetch: o.fetch,
    restUrl: o.restUrl,
    timeoutMs: o.restTimeoutMs,
    backoff,
    logger: log,
    onBackoff: (t, ms) => throttle('backoff', t, ms),
    onInvalidRow: (reason, raw) => notice({ kind: 'invalid', reason, raw }),
    onCall: () => {
      counters.historyCalls += 1;
    },
  });

  const entries = new Map<string, { instrument: BinanceInstrument; sequencer: CandleSequencer }>();
  for (const instrument of o.instruments) {
    const sequencer = new CandleSequencer({
      instrument,
      now: o.now,
      lateGraceMs: o.lateGraceMs,
      since: o.since,
      signal,
      logger: log,
      emit: (candle) => queue.push({ kind: 'candle', candle }, signal),
      history: (range, onPage) => history.fetchClosed(instrument, range, signal, onPage),
      notice,
    });
    entries.set(`${instrument.market}:${instrument.symbol}`, { instrument, sequencer });
  }
  const sequencers = [...entries.values()].map((e) => e.sequencer);
  const sequencersOf = (m: BinanceMarket): CandleSequencer[] =>
    [...entries.values()].filter((e) => e.instrument.market === m).map((e) => e.sequencer);

  const markets = BINANCE_MARKETS.filter((m) => o.instruments.some((i) => i.market === m));
  const state = new FeedStateTracker<BinanceMarket>(markets, (s, reason) =>
    notice({ kind: 'state', state: s, reason }),
  );

  const onMessage = (market: BinanceMarket, conn: StreamConnection, text: string, closing: boolean): void => {
    const msg = parseBinanceMessage(text);
    if (msg.type === 'response') return;
    if (msg.type === 'serverShutdown') {
      log.warn({ source: 'binance', market }, 'binance serverShutdown: reconnecting');
      conn.rotate('serverShutdown');
      return;
    }
    if (!closing) state.data(market);
    if (msg.type === 'invalid') {
      notice({ kind: 'invalid', reason: `${market}: ${msg.reason}`, raw: clip(text) });
      return;
    }
    const entry = entries.get(`${market}:${msg.symbol}`);
    if (!entry) {
      notice({ kind: 'invalid', reason: `${market}: unknown symbol ${msg.symbol}`, raw: clip(text) });
      return;
    }
    if (msg.type === 'kline') {
      if (msg.closed) entry.sequencer.live(toCandle(entry.instrument, msg.kline, 'ws'));
      return;
    }
    const tick = toTick(entry.instrument, msg.bid, msg.ask, msg.exchangeTsMs, o.now());
    if (!queue.offer({ kind: 'tick', tick }, true)) counters.dropped += 1;
  };

  for (const market of markets) {
    const streams = streamsOf(o.instruments.filter((i) => i.market === market));
    const conn: StreamConnection = new StreamConnection(
      {
        label: market,
        url: `${o.wsUrl[market]}/stream?streams=${streams.join('/')}`,
        silenceTimeoutMs: o.silenceTimeoutMs,
        rotateAfterMs: o.rotateAfterMs,
        backoff,
        logger: log,
      },
      {
        onOpen: (reconnect) => {
          counters.connects += 1;
          state.set(
            market,
            'RECOVERING',
            `${market}: ${reconnect ? 'reconnected' : 'connected'}, waiting for data`,
          );
          for (const s of sequencersOf(market)) s.requestFill(reconnect ? 'reconnected' : 'connected');
        },
        onMessage: (text, closing) => onMessage(market, conn, text, closing),
        onClosed: ({ planned, reason, retryInMs }) => {
          if (planned) state.set(market, 'RECOVERING', `${market}: ${reason}`);
          else state.set(market, 'DISCONNECTED', `${market}: ${reason}; reconnecting in ${retryInMs} ms`);
        },
      },
    );
    connections.set(market, conn);
  }

  expose({ queue, sequencers });
  const runs = [...connections.values()].map((c) => c.run(signal));
  const lateCheck = setInterval(() => {
    for (const s of sequencers) s.checkLate();
  }, o.gapCheckIntervalMs);
  try {
    for (;;) {
      const ev = await queue.shift(signal);
      if (ev === undefined) return;
      yield ev;
    }
  } finally {
    clearInterval(lateCheck);
    outer.removeEventListener('abort', stop);
    ac.abort();
    await Promise.allSettled([...runs, ...sequencers.map((s) => s.idle())]);
    counters.duplicatesBefore += sequencers.reduce((n, s) => n + s.duplicates, 0);
    expose({ queue, sequencers: [] });
  }
}
