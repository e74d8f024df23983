/**
 * Exponential backoff with optional full jitter.
 * delay(attempt) = min(maxMs, baseMs * factor^(attempt-1)), attempt counted from 1.
 */
export interface BackoffOptions {
  /** First delay, ms. */
  readonly baseMs: number;
  /** Upper bound of any delay, ms. */
  readonly maxMs: number;
  /** Growth per attempt. Default 2. */
  readonly factor?: number;
  /** Fraction of the delay that is randomised (0 = none, 1 = full jitter). Default 0. */
  readonly jitter?: number;
}

export function backoffDelay(
  opts: BackoffOptions,
  attempt: number,
  random: () => number = Math.random,
): number {
  const n = Math.max(1, Math.floor(attempt));
  const raw = opts.baseMs * Math.pow(opts.factor ?? 2, n - 1);
  const capped = Math.min(opts.maxMs, Number.isFinite(raw) ? raw : opts.maxMs);
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0));
  return Math.round(capped * (1 - jitter) + capped * jitter * random());
}

/** A resettable backoff: `next()` grows the delay, `reset()` returns to the base after a good cycle. */
export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}

  next(): number {
    this.attempt += 1;
    return backoffDelay(this.opts, this.attempt);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
