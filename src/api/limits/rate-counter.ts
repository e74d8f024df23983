/**
 * Fixed-window request counters in Redis, so that every API process on the same Redis counts against
 * the same limit. One key per limit and client, `api:rl:{<limit>:<client>}`, counted in one
 * transaction without Lua (services run no scripts of their own here; see docs/security.md):
 *
 *   MULTI; INCR k; PEXPIRE k <window> NX; PTTL k; EXEC
 *
 * The first hit of a window creates the key and starts its expiry (NX: later hits do not move it), so
 * the count falls back to zero when the window ends. The braces make the key its own hash slot on a
 * Redis Cluster (a MULTI must stay on one slot). The API user's ACL allows exactly these commands on
 * `api:rl:*` (src/acl/rules.ts).
 *
 * Redis down or slow: the hit fails after `timeoutMs`, the caller lets the request through (fail open:
 * what needs Redis answers 503 by itself), `api_rate_limit_errors_total` counts it and a warning is
 * logged at most every `warnEveryMs`.
 */
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import { Counter, type Registry } from 'prom-client';
import type { RedisClient } from '../../bus/connection.js';
import { withDefaults, type WithDefaults } from '../../util/defaults.js';
import { errorMessage } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { withTimeout } from '../http-errors.js';

/** The key of a limit's counter for one client. */
export function rateLimitKey(key: string): string {
  return `api:rl:{${key}}`;
}

export interface RateCounterOptions {
  readonly redis: RedisClient;
  readonly registry: Registry;
  readonly log: Logger;
  /**
   * Longest wait for Redis before a hit fails (and the request goes through), ms.
   * @defaultValue 1000
   */
  readonly timeoutMs?: number;
  /**
   * Least time between two warnings about a failing counter, ms.
   * @defaultValue 10000
   */
  readonly warnEveryMs?: number;
}

/** The defaults of {@link RateCounterOptions}. */
export const RATE_COUNTER_DEFAULTS = Object.freeze({
  timeoutMs: 1000,
  warnEveryMs: 10_000,
} satisfies Partial<RateCounterOptions>);

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter {
  const known = registry.getSingleMetric(name);
  return known instanceof Counter ? known : new Counter({ name, help, labelNames, registers: [registry] });
}

export class RateCounter {
  private readonly o: WithDefaults<RateCounterOptions, typeof RATE_COUNTER_DEFAULTS>;
  /** Requests refused by a limit, by limit. */
  readonly refused: Counter;
  private readonly errors: Counter;
  private lastWarn = 0;

  constructor(options: RateCounterOptions) {
    this.o = withDefaults(RATE_COUNTER_DEFAULTS, options);
    this.refused = counter(
      this.o.registry,
      'api_rate_limited_total',
      'Requests refused with 429 by a rate limit, by limit',
      ['limit'],
    );
    this.errors = counter(
      this.o.registry,
      'api_rate_limit_errors_total',
      'Rate-limit counts that failed (Redis down or slow); those requests were let through',
      [],
    );
    this.errors.inc(0);
  }

  /** Count one hit of `key` in a window of `windowMs`: the count so far and the time left of the window. */
  async hit(key: string, windowMs: number): Promise<{ current: number; ttl: number }> {
    const k = rateLimitKey(key);
    try {
      const [current, , ttl] = await withTimeout(
        this.o.redis.multi().incr(k).pExpire(k, windowMs, 'NX').pTTL(k).exec(),
        this.o.timeoutMs,
        'rate-limit count',
      );
      const t = Number(ttl);
      return { current: Number(current), ttl: t > 0 ? t : windowMs };
    } catch (err) {
      this.errors.inc();
      const now = Date.now();
      if (now - this.lastWarn >= this.o.warnEveryMs) {
        this.lastWarn = now;
        this.o.log.warn({ err: errorMessage(err) }, 'rate limits cannot be counted: requests go through');
      }
      throw err;
    }
  }

  /** The store `@fastify/rate-limit` counts with (its documented `store` option), over this counter. */
  storeClass(): FastifyRateLimitStoreCtor {
    const hit = (key: string, windowMs: number) => this.hit(key, windowMs);
    return class RedisRateStore implements FastifyRateLimitStore {
      incr(
        key: string,
        callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
        timeWindow: number,
      ): void {
        hit(key, timeWindow).then(
          (r) => callback(null, r),
          (err: unknown) => callback(err instanceof Error ? err : new Error(errorMessage(err))),
        );
      }

      child(): FastifyRateLimitStore {
        return this;
      }
    };
  }
}
