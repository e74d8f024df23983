/**
 * The candle sequencer, venue-free: it works on normalized candles (`kit/candle-values.ts`).
 *
 * Per instrument: closed candles out in order, each minute once, without gaps. One task runs at a time
 * (live candles and fills of one instrument never overlap), so what is yielded is always the next
 * expected minute:
 * - a live closed candle for a minute already yielded is a duplicate and dropped;
 * - one that skips minutes is preceded by a REST fill of the skipped ones (origin `rest`);
 * - after a (re)connect, and when the expected minute's closing message is late by more than the grace
 *   period (checked against the market clock `now()`), the closed minutes still missing are fetched;
 * - before the first candle nothing is fetched, unless `since` says where the sequence starts.
 */
import type { Logger } from '../../util/log.js';
import type { SourceNotice } from '../types.js';
import type { Candle } from '../../contracts/candle.js';
import { MINUTE_MS, toCandle } from './candle-values.js';
import type { FillOutcome, FillRange } from './history.js';
import type { CandleValues, VenueInstrument } from './venue.js';

export interface CandleSequencerDeps {
  readonly instrument: VenueInstrument;
  /** Market clock, epoch ms. */
  readonly now: () => number;
  /** See KitSourceOptions.lateGraceMs. */
  readonly lateGraceMs: number;
  /** First minute wanted, epoch ms, or null: the first live candle starts the sequence. */
  readonly since: number | null;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** Hand a candle to the consumer; waits for room; false when stopping. */
  readonly emit: (candle: Candle) => Promise<boolean>;
  /** Closed candles of a range from REST, page by page. */
  readonly history: (
    range: FillRange,
    onPage: (candles: readonly CandleValues[]) => Promise<boolean>,
  ) => Promise<FillOutcome>;
  readonly notice: (n: SourceNotice) => void;
}

/** Longest wait between two late fills of one instrument that bring nothing, market-clock ms. */
const MAX_LATE_SPACING_MS = 300_000;
const LATE = 'closing message late';

type Task =
  { readonly kind: 'live'; readonly candle: Candle } | { readonly kind: 'fill'; readonly reason: string };

function floorMinute(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export class CandleSequencer {
  private nextOpen: number | null;
  private readonly tasks: Task[] = [];
  private running: Promise<void> | null = null;
  private lastFillAt = Number.NEGATIVE_INFINITY;
  /** Late fills in a row that brought nothing (a halted symbol): each doubles the wait for the next. */
  private emptyLateFills = 0;
  private dropped = 0;

  constructor(private readonly deps: CandleSequencerDeps) {
    this.nextOpen = deps.since === null ? null : Math.ceil(deps.since / MINUTE_MS) * MINUTE_MS;
  }

  /** Open time of the next candle to yield; null before the first one (without `since`). */
  get expectedOpen(): number | null {
    return this.nextOpen;
  }

  /** Live closed candles dropped because their minute was already yielded. */
  get duplicates(): number {
    return this.dropped;
  }

  /** A closed candle from the socket. */
  live(candle: Candle): void {
    this.tasks.push({ kind: 'live', candle });
    this.kick();
  }

  /** Fetch the closed minutes missing up to now (after a connect, or a late minute). */
  requestFill(reason: string): void {
    if (!this.tasks.some((t) => t.kind === 'fill')) this.tasks.push({ kind: 'fill', reason });
    this.kick();
  }

  /** Called periodically: is the expected minute's closing message late beyond the grace period? */
  checkLate(): void {
    if (this.running !== null || this.tasks.length > 0 || this.nextOpen === null) return;
    const t = this.deps.now();
    if (t < this.nextOpen + MINUTE_MS + this.deps.lateGraceMs) return;
    // REST may not have it yet either (or ever, for a halted symbol): ask again only after another grace
    // period, doubled for every late fill in a row that brought nothing, up to 5 minutes.
    const spacing = Math.min(
      Math.max(this.deps.lateGraceMs, 1000) * 2 ** this.emptyLateFills,
      MAX_LATE_SPACING_MS,
    );
    if (t < this.lastFillAt + spacing) return;
    this.requestFill(LATE);
  }

  /** Resolves when no task runs (for a clean stop). */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private kick(): void {
    if (this.running !== null || this.deps.signal.aborted) return;
    this.running = this.drain().finally(() => {
      this.running = null;
      if (this.tasks.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    for (let task = this.tasks.shift(); task !== undefined; task = this.tasks.shift()) {
      if (this.deps.signal.aborted) return;
      try {
        if (task.kind === 'live') await this.onLive(task.candle);
        else await this.fill(floorMinute(this.deps.now()), this.deps.now(), task.reason);
      } catch (err) {
        // A bug, not the network (those are outcomes): keep serving the instrument.
        this.deps.logger.error(
          { err, instrument: this.deps.instrument.spec.instrumentKey },
          'candle task failed',
        );
      }
    }
  }

  private async onLive(c: Candle): Promise<void> {
    if (this.nextOpen !== null && c.tsOpen < this.nextOpen) {
      this.dropped += 1;
      return;
    }
    if (this.nextOpen !== null && c.tsOpen > this.nextOpen) {
      // Every minute before a closed one is closed, whatever our clock says.
      await this.fill(
        c.tsOpen,
        Math.max(this.deps.now(), c.tsOpen),
        `minutes missing before ${iso(c.tsOpen)}`,
      );
      if (this.deps.signal.aborted) return;
    }
    await this.put(c);
  }

  private async put(c: Candle): Promise<boolean> {
    if (!(await this.deps.emit(c))) return false;
    this.nextOpen = c.tsOpen + MINUTE_MS;
    this.emptyLateFills = 0;
    return true;
  }

  /** Yield the closed minutes from the expected one up to (not including) `toExclusive`, from REST. */
  private async fill(toExclusive: number, closedBefore: number, reason: string): Promise<void> {
    const from = this.nextOpen;
    if (from === null || from >= toExclusive) return;
    this.lastFillAt = this.deps.now();
    const key = this.deps.instrument.spec.instrumentKey;
    this.deps.logger.info({ instrument: key, from: iso(from), to: iso(toExclusive), reason }, 'history fill');
    const outcome = await this.deps.history({ from, toExclusive, closedBefore }, async (candles) => {
      for (const k of candles) {
        if (this.nextOpen !== null && k.openTime < this.nextOpen) continue;
        if (!(await this.put(toCandle(this.deps.instrument, k, 'rest')))) return false;
      }
      return true;
    });
    if (reason === LATE && this.nextOpen === from) this.emptyLateFills += 1;
    if (outcome.kind === 'failed') {
      this.deps.notice({
        kind: 'invalid',
        reason: `${key}: history fill ${iso(from)}..${iso(toExclusive)} failed: ${outcome.reason}`,
        raw: outcome.raw,
      });
    }
  }
}
