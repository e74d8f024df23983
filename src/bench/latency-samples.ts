/**
 * A growable buffer of latency samples for the benches (ws-bench, soak probes): one Float64Array that
 * doubles when full, so a run of millions of deliveries costs a few reallocations instead of a boxed
 * number per sample in a plain array, and `summary()` sorts a typed array (numeric, no comparator).
 * Percentiles come from src/bench/stats.ts (nearest rank), the same rule `marketbus bench` reports.
 */
import { summarize, type Summary } from './stats.js';
import { InvalidArgumentError } from '../util/errors.js';

export interface LatencySamplesOptions {
  /**
   * Samples the buffer holds before its first growth; default 16,384 (128 KiB). A bench that knows it
   * takes many samples starts larger to skip the first doublings.
   */
  readonly initialCapacity?: number;
}

/** Latency samples in whatever unit the caller pushes (every bench here pushes ms). */
export class LatencySamples {
  private readonly initial: number;
  private buf: Float64Array;
  private n = 0;

  constructor(o: LatencySamplesOptions = {}) {
    this.initial = o.initialCapacity ?? 1 << 14;
    if (!Number.isInteger(this.initial) || this.initial < 1)
      throw new InvalidArgumentError('initialCapacity', `must be a positive integer, got ${this.initial}`);
    this.buf = new Float64Array(this.initial);
  }

  /** Samples taken since construction or the last `clear()`. */
  get count(): number {
    return this.n;
  }

  push(sample: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = sample;
  }

  /**
   * Forget every sample (a new window). A buffer that grew past four times its initial capacity is
   * dropped for a fresh one, so one busy window does not pin its memory for the rest of a long run.
   */
  clear(): void {
    this.n = 0;
    if (this.buf.length > 4 * this.initial) this.buf = new Float64Array(this.initial);
  }

  /** The samples taken, in arrival order: a view of the buffer, valid until the next push or clear. */
  values(): Float64Array {
    return this.buf.subarray(0, this.n);
  }

  /** Count, mean, min, max and p50/p90/p99/p99.9 (nearest rank) of the samples; NaN figures when empty. */
  summary(): Summary {
    return summarize(this.values());
  }
}
