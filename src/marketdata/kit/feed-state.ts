/**
 * The source's state (docs/contracts.md §8) from the states of its sockets: the worst one wins
 * (DISCONNECTED > RECOVERING > STREAM). Each socket is RECOVERING from connect until its first data
 * message, STREAM while data flows, DISCONNECTED from a loss until it is open again; a planned rotation
 * goes straight to RECOVERING. A change of the combined state is reported once, with the reason of the
 * socket that caused it.
 */
import type { FeedState } from '../types.js';

const RANK: Readonly<Record<FeedState, number>> = { IDLE: 0, STREAM: 1, RECOVERING: 2, DISCONNECTED: 3 };

export class FeedStateTracker<K extends string> {
  private readonly states = new Map<K, FeedState>();
  private reported: FeedState | null = null;

  constructor(
    keys: readonly K[],
    private readonly report: (state: FeedState, reason: string) => void,
  ) {
    for (const k of keys) this.states.set(k, 'RECOVERING');
  }

  get state(): FeedState | null {
    return this.reported;
  }

  stateOf(key: K): FeedState | undefined {
    return this.states.get(key);
  }

  set(key: K, state: FeedState, reason: string): void {
    this.states.set(key, state);
    let worst: FeedState = 'IDLE';
    for (const s of this.states.values()) if (RANK[s] > RANK[worst]) worst = s;
    if (worst === this.reported) return;
    this.reported = worst;
    this.report(worst, reason);
  }

  /** A data message arrived on `key`'s socket. */
  data(key: K): void {
    if (this.states.get(key) !== 'STREAM') this.set(key, 'STREAM', `${key}: data flowing`);
  }
}
