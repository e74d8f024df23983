/**
 * The feed's diagnostic state (docs/contracts.md §8): STREAM, IDLE (market closed or quiet), DISCONNECTED,
 * RECOVERING; per instrument ok / waiting / stale / stopped (market closed, or refused by the venue);
 * tick silence; throttling and backoff. One per source: the feed publishes each as `md.status.<source>`.
 * Ages are measured on the wall clock at receipt, so an accelerated simulated clock does not skew them.
 */
import type { FeedState, SourceNotice } from './types.js';

export type InstrumentState = 'ok' | 'waiting' | 'stale' | 'stopped';

export interface InstrumentStatus {
  readonly state: InstrumentState;
  readonly bid: number | null;
  readonly ask: number | null;
  readonly mid: number | null;
  /** Seconds since the last tick was received; null before the first. */
  readonly tickAgeSeconds: number | null;
  readonly marketOpen: boolean;
  /** Open time (epoch ms) of the last closed 1m candle. */
  readonly lastCandleTsOpen: number | null;
  /** Why the instrument is not served (the venue refused it), else null. */
  readonly reason: string | null;
}

export interface FeedStatusSnapshot {
  readonly source: string;
  readonly state: FeedState;
  /** Epoch ms of the last state change. */
  readonly stateSince: number;
  readonly reason: string;
  readonly tickSilenceSeconds: number;
  readonly marketOpen: boolean;
  readonly throttled: boolean;
  readonly backoffSeconds: number;
  readonly instruments: Readonly<Record<string, InstrumentStatus>>;
}

interface Inst {
  bid: number | null;
  ask: number | null;
  lastTickAt: number | null;
  marketOpen: boolean;
  lastCandleTsOpen: number | null;
  /** The venue refused it: never served, `stopped` with this reason. */
  rejected: string | null;
}

function newInst(): Inst {
  return { bid: null, ask: null, lastTickAt: null, marketOpen: true, lastCandleTsOpen: null, rejected: null };
}

interface Markets {
  readonly allClosed: boolean;
  readonly allRejected: boolean;
}

/** Refused instruments count as closed markets: the feed's state is about the ones served. */
const closed = (i: Inst): boolean => !i.marketOpen || i.rejected !== null;

export class FeedStatus {
  private state: FeedState = 'RECOVERING';
  private stateSince: number;
  private reason = 'starting';
  private sourceState: FeedState = 'RECOVERING';
  private dataSinceRecovery = false;
  private lastTickAt: number | null = null;
  private readonly startedAt: number;
  private throttled = false;
  private backoffMs = 0;
  private readonly inst = new Map<string, Inst>();
  private markets: Markets | null = null;

  constructor(
    readonly source: string,
    instrumentKeys: readonly string[],
    private readonly staleAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
    this.stateSince = this.startedAt;
    for (const k of instrumentKeys) this.inst.set(k, newInst());
  }

  onTick(key: string, bid: number, ask: number): void {
    const i = this.instrument(key);
    i.bid = bid;
    i.ask = ask;
    i.lastTickAt = this.now();
    this.lastTickAt = i.lastTickAt;
    this.dataSinceRecovery = true;
  }

  onCandle(key: string, tsOpen: number): void {
    const i = this.instrument(key);
    i.lastCandleTsOpen = Math.max(i.lastCandleTsOpen ?? 0, tsOpen);
    this.dataSinceRecovery = true;
  }

  onNotice(n: SourceNotice): void {
    if (n.kind === 'state') {
      this.sourceState = n.state;
      this.reason = n.reason;
      if (n.state === 'RECOVERING' || n.state === 'DISCONNECTED') this.dataSinceRecovery = false;
    } else if (n.kind === 'market') {
      this.instrument(n.instrumentKey).marketOpen = n.open;
      this.markets = null;
    } else if (n.kind === 'throttle') {
      this.throttled = n.throttled;
      this.backoffMs = n.backoffMs;
    } else if (n.kind === 'rejected') {
      this.instrument(n.instrumentKey).rejected = n.reason;
      this.markets = null;
    }
  }

  /** Recompute the state; returns the new state when it changed, else null. */
  evaluate(): FeedState | null {
    const next = this.derive();
    if (next.state === this.state) return null;
    this.state = next.state;
    this.reason = next.reason;
    this.stateSince = this.now();
    return next.state;
  }

  snapshot(): FeedStatusSnapshot {
    const now = this.now();
    const instruments: Record<string, InstrumentStatus> = {};
    let anyOpen = false;
    for (const [k, i] of this.inst) {
      anyOpen ||= i.marketOpen;
      instruments[k] = {
        state: this.instrumentState(i, now),
        bid: i.bid,
        ask: i.ask,
        mid: i.bid !== null && i.ask !== null ? (i.bid + i.ask) / 2 : null,
        tickAgeSeconds: i.lastTickAt === null ? null : (now - i.lastTickAt) / 1000,
        marketOpen: i.marketOpen,
        lastCandleTsOpen: i.lastCandleTsOpen,
        reason: i.rejected,
      };
    }
    return {
      source: this.source,
      state: this.state,
      stateSince: this.stateSince,
      reason: this.reason,
      tickSilenceSeconds: (now - (this.lastTickAt ?? this.startedAt)) / 1000,
      marketOpen: anyOpen,
      throttled: this.throttled,
      backoffSeconds: this.backoffMs / 1000,
      instruments,
    };
  }

  private instrumentState(i: Inst, now: number): InstrumentState {
    if (closed(i)) return 'stopped';
    if (i.lastTickAt === null) return 'waiting';
    return now - i.lastTickAt > this.staleAfterMs ? 'stale' : 'ok';
  }

  private derive(): { state: FeedState; reason: string } {
    if (this.sourceState === 'DISCONNECTED') return { state: 'DISCONNECTED', reason: this.reason };
    const m = this.marketsNow();
    if (m.allRejected) return { state: 'IDLE', reason: 'no instrument served: the venue refused every one' };
    if (!this.dataSinceRecovery) {
      return m.allClosed
        ? { state: 'IDLE', reason: 'market closed' }
        : { state: 'RECOVERING', reason: 'waiting for the first data' };
    }
    if (m.allClosed) return { state: 'IDLE', reason: 'market closed' };
    const silence = this.now() - (this.lastTickAt ?? this.startedAt);
    if (silence > this.staleAfterMs)
      return { state: 'IDLE', reason: `no ticks for ${Math.round(silence / 1000)} s` };
    return { state: 'STREAM', reason: 'data flowing' };
  }

  /** Whether every market is closed / every instrument refused: read on every tick, so kept. */
  private marketsNow(): Markets {
    if (!this.markets) {
      const all = [...this.inst.values()];
      this.markets = {
        allClosed: all.every(closed),
        allRejected: all.length > 0 && all.every((i) => i.rejected !== null),
      };
    }
    return this.markets;
  }

  private instrument(key: string): Inst {
    let i = this.inst.get(key);
    if (!i) {
      this.inst.set(key, (i = newInst()));
      this.markets = null;
    }
    return i;
  }
}

/** The status as flat string fields for `md.status.<source>` (JSON for the nested parts). */
export function statusFields(
  s: FeedStatusSnapshot,
  supervisor: Readonly<Record<string, number>>,
): Record<string, string> {
  return {
    schema_version: '1',
    source: s.source,
    state: s.state,
    state_since: new Date(s.stateSince).toISOString(),
    reason: s.reason,
    tick_silence_seconds: s.tickSilenceSeconds.toFixed(3),
    market_open: String(s.marketOpen),
    throttled: String(s.throttled),
    backoff_seconds: s.backoffSeconds.toFixed(3),
    instruments: JSON.stringify(s.instruments),
    supervisor: JSON.stringify(supervisor),
    ts: new Date().toISOString(),
  };
}
