/**
 * What a source under test yielded, as the conformance suite reads it: candles per instrument key, feed
 * states, throttle / invalid / rejected notices, and hooks that act the moment an event arrives (a case
 * moves the market clock when the source reports a disconnect, before it can reconnect). Also the
 * suite's wait: a condition polled until it holds, never a fixed sleep.
 */
import type { Candle } from '../../../src/contracts/candle.js';
import type { FeedState, MarketSource, SourceEvent } from '../../../src/marketdata/types.js';
import type { FakeVenueServer } from './venue-harness.js';

const MINUTE_MS = 60_000;

/** What the suite compares of a candle: its minute and the venue's values, as numbers. */
export type CandleNumbers = Pick<
  Candle,
  'tsOpen' | 'tsClose' | 'open' | 'high' | 'low' | 'close' | 'volumeBase' | 'volumeQuote'
>;

export function numbersOf(c: Candle): CandleNumbers {
  const { tsOpen, tsClose, open, high, low, close, volumeBase, volumeQuote } = c;
  return { tsOpen, tsClose, open, high, low, close, volumeBase, volumeQuote };
}

/** The server's canonical candles of `key` for the minutes `from`..`to` (inclusive) the venue has. */
export function canonicalNumbers(
  server: FakeVenueServer,
  key: string,
  from: number,
  to: number,
): CandleNumbers[] {
  const out: CandleNumbers[] = [];
  for (let t = from; t <= to; t += MINUTE_MS) {
    const v = server.canonical(key, t);
    if (v === null) continue;
    const { open, high, low, close, volumeBase, volumeQuote } = v;
    out.push({ tsOpen: t, tsClose: t + MINUTE_MS, open, high, low, close, volumeBase, volumeQuote });
  }
  return out;
}

export interface StateChange {
  readonly state: FeedState;
  readonly reason: string;
  /** Index of the event in `events`. */
  readonly at: number;
}

/** The kit's notice for an instrument the venue does not list (read without relying on its type). */
export interface Rejected {
  readonly instrumentKey: string;
  readonly configKey: string;
  readonly reason: string;
}

export interface Collected {
  readonly events: readonly SourceEvent[];
  /** Candles of `key`, in the order yielded. */
  candles(key: string): Candle[];
  /** Whether `key` has yielded the candle of `openTime`. */
  has(key: string, openTime: number): boolean;
  states(): StateChange[];
  /** The state last reported, or null before the first. */
  lastState(): FeedState | null;
  throttles(): { throttled: boolean; backoffMs: number }[];
  invalid(): { reason: string; raw: string }[];
  rejected(): Rejected[];
  /** Run `action` once, synchronously, on the first event from now on that matches. */
  when(match: (ev: SourceEvent) => boolean, action: () => void): void;
  /** Abort the source and wait for its generator to return. */
  stop(): Promise<void>;
}

function asRejected(ev: SourceEvent): Rejected | null {
  const e = ev as unknown as Readonly<Record<string, unknown>>;
  if (e['kind'] !== 'rejected') return null;
  const field = (k: string): string => (typeof e[k] === 'string' ? e[k] : '');
  return { instrumentKey: field('instrumentKey'), configKey: field('configKey'), reason: field('reason') };
}

export function collect(source: MarketSource): Collected {
  const ac = new AbortController();
  const events: SourceEvent[] = [];
  const byKey = new Map<string, Candle[]>();
  const hooks: { match: (ev: SourceEvent) => boolean; action: () => void }[] = [];
  const done = (async () => {
    for await (const ev of source.events(ac.signal)) {
      events.push(ev);
      if (ev.kind === 'candle') {
        const list = byKey.get(ev.candle.instrumentKey) ?? [];
        list.push(ev.candle);
        byKey.set(ev.candle.instrumentKey, list);
      }
      for (let i = hooks.length - 1; i >= 0; i -= 1) {
        const h = hooks[i];
        if (h?.match(ev)) {
          hooks.splice(i, 1);
          h.action();
        }
      }
    }
  })();
  const states = (): StateChange[] =>
    events.flatMap((e, at) => (e.kind === 'state' ? [{ state: e.state, reason: e.reason, at }] : []));
  return {
    events,
    candles: (key) => [...(byKey.get(key) ?? [])],
    has: (key, openTime) => (byKey.get(key) ?? []).some((c) => c.tsOpen === openTime),
    states,
    lastState: () => states().at(-1)?.state ?? null,
    throttles: () =>
      events.flatMap((e) =>
        e.kind === 'throttle' ? [{ throttled: e.throttled, backoffMs: e.backoffMs }] : [],
      ),
    invalid: () => events.flatMap((e) => (e.kind === 'invalid' ? [{ reason: e.reason, raw: e.raw }] : [])),
    rejected: () => events.flatMap((e) => asRejected(e) ?? []),
    when: (match, action) => {
      hooks.push({ match, action });
    },
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

/** Poll `check` until it holds; fails with `label` after `timeoutMs` (real time). */
export async function waitFor(check: () => boolean, label: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The most any sliding window of `windowMs` holds, counting each item's `weight` (1 when absent). */
export function busiestWindow(
  items: readonly { readonly at: number; readonly weight?: number }[],
  windowMs: number,
): number {
  const sorted = [...items].sort((a, b) => a.at - b.at);
  let most = 0;
  let sum = 0;
  let first = 0;
  for (const item of sorted) {
    sum += item.weight ?? 1;
    while (first < sorted.length && item.at - (sorted[first]?.at ?? 0) >= windowMs) {
      sum -= sorted[first]?.weight ?? 1;
      first += 1;
    }
    most = Math.max(most, sum);
  }
  return most;
}
