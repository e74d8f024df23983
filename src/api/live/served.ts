/**
 * The instruments the feeds serve, as their status says (docs/contracts.md §8): the union of the
 * `instruments` keys of the newest entry of every `md.status.<source>` stream. The live relay refuses
 * a candles or prices subscription to any other key (`instrument_not_served`), so a client cannot make
 * the shared reader read streams no feed writes.
 *
 * The set is cached: re-read (SCAN `md.status.*` and one XREVRANGE per status stream) when it is older
 * than `refreshMs`, and on a miss at most once per `missRefreshMs` (so a feed that has just started is
 * found within that time, and a client asking for unserved keys costs at most one re-read per interval
 * for the whole process). Status entries the hub reads for its subscribers are added as they arrive, so
 * a client that learns an instrument from the status channel can subscribe to it at once.
 */
import type { RedisClient } from '../../bus/connection.js';
import { scanStreams } from '../../bus/health.js';
import { sendCommand } from '../../bus/raw-command.js';
import { parseEntries, type StreamEntry } from '../../bus/replies.js';
import { withDefaults } from '../../util/defaults.js';
import { withTimeout } from '../http-errors.js';

export interface ServedInstrumentsOptions {
  /**
   * Oldest the cached set may be when a subscription is checked, ms.
   * @defaultValue 5000
   */
  readonly refreshMs?: number | undefined;
  /**
   * Least time between two re-reads caused by a key not in the set, ms.
   * @defaultValue 1000
   */
  readonly missRefreshMs?: number | undefined;
}

/** The defaults of {@link ServedInstrumentsOptions}, applied by the `ServedInstruments` constructor. */
export const SERVED_INSTRUMENTS_DEFAULTS = Object.freeze({
  refreshMs: 5000,
  missRefreshMs: 1000,
} satisfies ServedInstrumentsOptions);

const STATUS_PATTERN = 'md.status.*';

export class ServedInstruments {
  private keys = new Set<string>();
  /** Start time of the newest completed re-read (its set is at least that fresh). */
  private readAt = Number.NEGATIVE_INFINITY;
  private lastMiss = Number.NEGATIVE_INFINITY;
  private inflight: { readonly startedAt: number; readonly done: Promise<void> } | undefined;
  private readonly refreshMs: number;
  private readonly missRefreshMs: number;

  constructor(
    private readonly redis: RedisClient,
    o: ServedInstrumentsOptions = {},
  ) {
    const d = withDefaults(SERVED_INSTRUMENTS_DEFAULTS, o);
    this.refreshMs = d.refreshMs;
    this.missRefreshMs = d.missRefreshMs;
  }

  /** True when a feed's newest status lists `instrumentKey`. Throws when Redis cannot be read. */
  async serves(instrumentKey: string): Promise<boolean> {
    const now = Date.now();
    if (now - this.readAt > this.refreshMs) await this.reread(now);
    if (this.keys.has(instrumentKey)) return true;
    if (now - this.lastMiss < this.missRefreshMs) return false;
    this.lastMiss = now;
    await this.reread(now);
    return this.keys.has(instrumentKey);
  }

  /** Status entries read by the hub: their instruments are served from now on. */
  note(entries: readonly StreamEntry[]): void {
    for (const e of entries) for (const k of instrumentsOf(e)) this.keys.add(k);
  }

  /** A re-read that started at `after` or later. */
  private async reread(after: number): Promise<void> {
    for (;;) {
      const r = this.inflight;
      if (!r) break;
      await r.done.catch(() => undefined);
      if (r.startedAt >= after) return r.done;
    }
    const startedAt = Date.now();
    const done = this.read().then((keys) => {
      this.keys = keys;
      this.readAt = Math.max(this.readAt, startedAt);
    });
    const mine = { startedAt, done };
    this.inflight = mine;
    const clear = (): void => {
      if (this.inflight === mine) this.inflight = undefined;
    };
    done.then(clear, clear);
    return done;
  }

  private async read(): Promise<Set<string>> {
    const statuses = await withTimeout(scanStreams(this.redis, STATUS_PATTERN), 5000, 'SCAN md.status.*');
    const newest = await withTimeout(
      Promise.all(statuses.map((s) => sendCommand(this.redis, ['XREVRANGE', s, '+', '-', 'COUNT', '1']))),
      5000,
      'XREVRANGE md.status.*',
    );
    const keys = new Set<string>();
    for (const raw of newest)
      for (const e of parseEntries(raw, 'XREVRANGE').entries) for (const k of instrumentsOf(e)) keys.add(k);
    return keys;
  }
}

/** The instrument keys of a status entry; none when its `instruments` field is missing or not JSON. */
function instrumentsOf(e: StreamEntry): string[] {
  const raw = e.fields['instruments'];
  if (raw === undefined) return [];
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.keys(v) : [];
  } catch {
    return [];
  }
}
