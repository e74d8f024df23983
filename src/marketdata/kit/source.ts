/**
 * A streaming venue's market source, built from its adapter (`venue.ts`): closed 1m candles (the
 * venue's closed flag only) and top of book from the sockets the adapter plans, with REST history
 * filling every gap (after a reconnect, a skipped minute, a late closing message) under the source's
 * history-call limit and the venue's shared REST budget. See ARCHITECTURE.md "Adding a venue" and the
 * options in `options.ts`.
 *
 * `events(signal)` runs everything for one consumer: when the adapter lists symbols it checks the
 * instruments first (an unknown one is reported `rejected` and not served), then yields from a bounded
 * queue, pauses the sockets when the consumer falls behind, never throws for the network or bad input
 * (it reports `state`, `throttle`, `invalid` and `rejected` notices), and on abort (or when the consumer
 * stops iterating) closes the sockets, clears its timers and returns.
 */
import type { MarketSource, SourceEvent, SourceNotice } from '../types.js';
import { toCandle, toTick } from './candle-values.js';
import { connectionBudgetFor } from './connection-budget.js';
import { EventQueue } from './event-queue.js';
import { FeedStateTracker } from './feed-state.js';
import { HistoryClient } from './history.js';
import { resolveKitOptions, type KitSourceOptions, type ResolvedKitOptions } from './options.js';
import { HistoryLimiter } from './rest-budget.js';
import { RestCaller } from './rest-caller.js';
import { CandleSequencer } from './sequencer.js';
import { VenueSocket } from './socket.js';
import { checkSymbols, rejectedNotice } from './symbols.js';
import type { SocketPlan, VenueAdapter, VenueInstrument, VenueMessage } from './venue.js';

export type { KitSourceOptions } from './options.js';

/** Counters of a source since it was created (queue figures: of the latest `events()` run). */
export interface KitSourceStats {
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
  /** Live closed candles dropped because their minute was already yielded. */
  readonly duplicates: number;
  /** WebSocket connections opened. */
  readonly connects: number;
  /** REST history calls made. */
  readonly historyCalls: number;
}

export interface KitSource extends MarketSource {
  stats(): KitSourceStats;
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

interface Entry<I extends VenueInstrument> {
  readonly instrument: I;
  /** Its place in the configured instrument list (for `rejected` notices). */
  readonly index: number;
  readonly sequencer: CandleSequencer;
  /** Refused by the venue at run time: no longer served. */
  rejected: boolean;
  /**
   * Its candle socket has opened once. Late checks wait for it: before that the connect's own fill
   * is still to come, and a late fill racing it would only ask REST twice.
   */
  connected: boolean;
}

/** Longest `raw` kept in an invalid notice, characters. */
const RAW_MAX = 2000;

function clip(s: string): string {
  return s.length > RAW_MAX ? s.slice(0, RAW_MAX) : s;
}

/** Create the source. Throws ConfigError for wrong options; never afterwards. */
export function createVenueSource<I extends VenueInstrument, U>(
  adapter: VenueAdapter<I, U>,
  urls: U,
  options: KitSourceOptions,
): KitSource {
  const o = resolveKitOptions(adapter, options);
  // Plan the sockets once now, so a plan the adapter refuses is a config error at creation, not later.
  adapter.sockets(o.instruments, urls);
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
    name: adapter.venue,
    instruments: o.instruments.map((i) => i.spec),
    events: (signal) =>
      run(adapter, urls, o, counters, signal, (view) => {
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

async function* run<I extends VenueInstrument, U>(
  adapter: VenueAdapter<I, U>,
  urls: U,
  o: ResolvedKitOptions<I>,
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
  const venue = adapter.venue;

  const sockets: VenueSocket[] = [];
  const queue = new EventQueue<SourceEvent>(o.queueCapacity, {
    onHigh: () => {
      counters.pauses += 1;
      for (const s of sockets) s.pause();
    },
    onLow: () => {
      for (const s of sockets) s.resume();
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
  const caller = new RestCaller({
    venue,
    windows: adapter.limits.rest,
    limiter: new HistoryLimiter({
      maxCalls: o.maxHistoryCallsPerMin,
      onThrottle: (t, ms) => throttle('limiter', t, ms),
    }),
    fetch: o.fetch,
    timeoutMs: o.restTimeoutMs,
    backoff,
    logger: log,
    onBackoff: (t, ms) => throttle('backoff', t, ms),
  });
  const history = new HistoryClient({
    history: adapter.history,
    urls,
    caller,
    now: o.now,
    onInvalidRow: (reason, raw) => notice({ kind: 'invalid', reason, raw }),
    onCall: () => {
      counters.historyCalls += 1;
    },
  });

  let served: readonly I[] = o.instruments;
  if (adapter.symbols) {
    const check = await checkSymbols(venue, adapter.symbols, urls, o.instruments, caller, log, signal);
    for (const r of check.rejected) {
      log.error({ source: venue, instrument: r.instrumentKey, reason: r.reason }, 'instrument rejected');
      notice(r);
    }
    served = check.accepted;
    if (signal.aborted) {
      outer.removeEventListener('abort', stop);
      return;
    }
  }

  const entries = new Map<string, Entry<I>>();
  o.instruments.forEach((instrument, index) => {
    if (!served.includes(instrument)) return;
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
    entries.set(instrument.spec.instrumentKey, {
      instrument,
      index,
      sequencer,
      rejected: false,
      connected: false,
    });
  });
  const sequencers = [...entries.values()].map((e) => e.sequencer);
  const plans = served.length > 0 ? adapter.sockets(served, urls) : [];
  const state = new FeedStateTracker<string>(
    plans.map((p) => p.label),
    (s, reason) => notice({ kind: 'state', state: s, reason }),
  );

  const onMessage = (
    plan: SocketPlan<I>,
    bySymbol: ReadonlyMap<string, Entry<I>>,
    msg: VenueMessage,
    text: string,
    closing: boolean,
  ): void => {
    const label = plan.label;
    if (msg.type === 'ack' || msg.type === 'reconnect' || msg.type === 'pong') return;
    if (msg.type === 'rejected') {
      const entry = bySymbol.get(msg.symbol);
      if (!entry || entry.rejected) return;
      entry.rejected = true;
      const r = rejectedNotice(entry.instrument, entry.index, `${label}: ${msg.reason}`);
      log.error({ source: venue, instrument: r.instrumentKey, reason: r.reason }, 'instrument rejected');
      notice(r);
      return;
    }
    if (!closing) state.data(label);
    if (msg.type === 'invalid') {
      notice({ kind: 'invalid', reason: `${label}: ${msg.reason}`, raw: clip(text) });
      return;
    }
    const entry = bySymbol.get(msg.symbol);
    if (!entry) {
      notice({ kind: 'invalid', reason: `${label}: unknown symbol ${msg.symbol}`, raw: clip(text) });
      return;
    }
    if (entry.rejected) return;
    if (msg.type === 'candle') {
      if (msg.closed) entry.sequencer.live(toCandle(entry.instrument, msg.values, 'ws'));
      return;
    }
    const tick = toTick(entry.instrument, msg.bid, msg.ask, msg.exchangeTsMs, o.now());
    if (!queue.offer({ kind: 'tick', tick }, true)) counters.dropped += 1;
  };

  const rotateAfterMs = Math.min(o.rotateAfterMs, adapter.rotateAfterMs ?? Number.POSITIVE_INFINITY);
  for (const plan of plans) {
    const bySymbol = new Map<string, Entry<I>>();
    for (const i of plan.instruments) {
      const e = entries.get(i.spec.instrumentKey);
      if (e) bySymbol.set(i.symbol, e);
    }
    const label = plan.label;
    const socket = new VenueSocket(
      {
        venue,
        label,
        url: plan.url,
        subscribe: plan.subscribe,
        subscribeLimit: adapter.limits.subscribes,
        connections: connectionBudgetFor(venue, plan.url, adapter.limits.connections),
        heartbeat: adapter.heartbeat,
        silenceTimeoutMs: o.silenceTimeoutMs,
        rotateAfterMs,
        serverCloseIsNotice: adapter.serverCloseIsNotice ?? false,
        backoff,
        parse: (text) => adapter.parseMessage(text, plan),
        logger: log,
      },
      {
        onOpen: (reconnect) => {
          counters.connects += 1;
          state.set(
            label,
            'RECOVERING',
            `${label}: ${reconnect ? 'reconnected' : 'connected'}, waiting for data`,
          );
          if (!plan.carriesCandles) return;
          for (const e of bySymbol.values()) {
            e.connected = true;
            if (!e.rejected) e.sequencer.requestFill(reconnect ? 'reconnected' : 'connected');
          }
        },
        onMessage: (msg, text, closing) => onMessage(plan, bySymbol, msg, text, closing),
        onClosed: ({ planned, reason, retryInMs }) => {
          if (planned) state.set(label, 'RECOVERING', `${label}: ${reason}`);
          else state.set(label, 'DISCONNECTED', `${label}: ${reason}; reconnecting in ${retryInMs} ms`);
        },
      },
    );
    sockets.push(socket);
  }

  expose({ queue, sequencers });
  const runs = sockets.map((s) => s.run(signal));
  const lateCheck = setInterval(() => {
    for (const e of entries.values()) if (e.connected && !e.rejected) e.sequencer.checkLate();
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
