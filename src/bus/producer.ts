/**
 * The producer: XADD with explicit or automatic IDs and retention, singly or in pipelined batches.
 * An explicit ID equal to or older than the stream's top is not an error but a typed `duplicate`
 * result (duplicates and out-of-order IDs are counted no-ops, not failures).
 */
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { errorMessage } from '../util/errors.js';
import { RedisPermissionError, RedisUnavailableError } from './errors.js';
import type { RedisClient } from './connection.js';
import { sendCommand } from './raw-command.js';
import { nodeGroups } from './slot-read.js';
import type { BusMetrics } from './metrics.js';
import { isDuplicateIdReply, isNoPermReply } from './redis-errors.js';
import { DEFAULT_STREAM_POLICY, trimOptions, type Retention, type StreamPolicy } from './stream-policy.js';
import type { XAddOptions } from '@redis/client/dist/lib/commands/XADD.js';

export interface PublishItem {
  readonly stream: string;
  readonly fields: Readonly<Record<string, string>>;
  /** Explicit entry ID `<ms>-<seq>`; default `*` (Redis assigns one). */
  readonly id?: string;
  /**
   * Retention applied with this XADD; `null` disables trimming.
   * @defaultValue the producer policy's retention of `stream`
   */
  readonly retention?: Retention | null;
}

export type PublishResult =
  | { readonly status: 'added'; readonly id: string }
  /** The explicit ID was equal to or older than the stream top: nothing was written. */
  | { readonly status: 'duplicate'; readonly id: string };

export type PublishOutcome =
  PublishResult | { readonly status: 'error'; readonly error: RedisUnavailableError | RedisPermissionError };

export interface ProducerOptions {
  /**
   * Gives the retention applied on each XADD without an explicit `retention` (looked up once per stream
   * name).
   * @defaultValue `DEFAULT_STREAM_POLICY` (no retention except dead-letter streams)
   */
  readonly policy?: StreamPolicy;
  /**
   * Largest number of XADDs written to Redis before awaiting their replies, entries.
   * @defaultValue 500
   */
  readonly batchSize?: number;
  /**
   * Counts published, duplicate and failed entries per stream.
   * @defaultValue none (not counted)
   */
  readonly metrics?: BusMetrics;
  /**
   * Longest wait for one batch's replies, ms; entries without a reply by then are `error` outcomes
   * (while Redis is unreachable the client queues commands, bounded, instead of failing them); 0 waits
   * indefinitely.
   * @defaultValue 2000
   */
  readonly timeoutMs?: number;
  /**
   * Clock for MINID retention, ms since epoch.
   * @defaultValue `Date.now`
   */
  readonly now?: () => number;
  /**
   * After each batch, WAIT until this many replicas of each server written to have the batch (a
   * master that dies right after a write then loses nothing acknowledged). Entries not confirmed in
   * `timeoutMs` are `error` outcomes, so a retrying caller writes them again (explicit IDs make that a
   * `duplicate`). 0: do not wait.
   * @defaultValue 0
   */
  readonly waitReplicas?: number;
}

/** The defaults of {@link ProducerOptions}, applied by the `StreamProducer` constructor. */
export const PRODUCER_DEFAULTS = Object.freeze({
  policy: DEFAULT_STREAM_POLICY,
  batchSize: 500,
  timeoutMs: 2000,
  now: Date.now,
  waitReplicas: 0,
} satisfies Partial<ProducerOptions>);

export class StreamProducer {
  private readonly retentionCache = new Map<string, Retention | null>();
  private readonly batchSize: number;
  private readonly now: () => number;
  private readonly policy: StreamPolicy;
  private readonly opts: WithDefaults<ProducerOptions, typeof PRODUCER_DEFAULTS>;

  constructor(
    private readonly client: RedisClient,
    opts: ProducerOptions = {},
  ) {
    this.opts = withDefaults(PRODUCER_DEFAULTS, opts);
    this.batchSize = Math.max(1, this.opts.batchSize);
    this.now = this.opts.now;
    this.policy = this.opts.policy;
  }

  /** Add one entry. Throws RedisUnavailableError when Redis fails; a duplicate ID is a result, not an error. */
  async publish(
    stream: string,
    fields: Readonly<Record<string, string>>,
    opts: { id?: string; retention?: Retention | null } = {},
  ): Promise<PublishResult> {
    const [outcome] = await this.publishMany([{ stream, fields, ...opts }]);
    if (!outcome) throw new RedisUnavailableError('no reply');
    if (outcome.status === 'error') throw outcome.error;
    return outcome;
  }

  /**
   * Add many entries, pipelined `batchSize` at a time; the outcomes are in input order. Entries of one
   * stream are written in input order, so explicit IDs must ascend within a stream.
   */
  async publishMany(items: readonly PublishItem[]): Promise<PublishOutcome[]> {
    const out: PublishOutcome[] = new Array<PublishOutcome>(items.length);
    for (let start = 0; start < items.length; start += this.batchSize) {
      const end = Math.min(items.length, start + this.batchSize);
      const pending: Promise<string>[] = [];
      for (let i = start; i < end; i++) {
        const it = items[i] as PublishItem;
        pending.push(this.client.xAdd(it.stream, it.id ?? '*', it.fields, this.trimFor(it)));
      }
      const settled = await this.settle(pending);
      const unreplicated = await this.unreplicated(items.slice(start, end), settled);
      for (let k = 0; k < settled.length; k++) {
        const it = items[start + k] as PublishItem;
        const s = settled[k] as PromiseSettledResult<string>;
        out[start + k] = this.outcome(
          it,
          s.status === 'fulfilled' && unreplicated.has(it.stream)
            ? { status: 'rejected', reason: unreplicated.get(it.stream) }
            : s,
        );
      }
    }
    return out;
  }

  /** With `waitReplicas`: WAIT per server written to; the streams whose server did not confirm, with why. */
  private async unreplicated(
    batch: readonly PublishItem[],
    settled: readonly PromiseSettledResult<string>[],
  ): Promise<Map<string, Error>> {
    const want = this.opts.waitReplicas;
    const failed = new Map<string, Error>();
    if (want <= 0) return failed;
    const written = [
      ...new Set(batch.filter((_it, i) => settled[i]?.status === 'fulfilled').map((it) => it.stream)),
    ];
    const timeoutMs = this.opts.timeoutMs;
    await Promise.all(
      nodeGroups(this.client, written).map(async (group) => {
        let why: Error | undefined;
        try {
          const acked = Number(
            await sendCommand(this.client, ['WAIT', String(want), String(timeoutMs)], group[0]),
          );
          if (acked < want)
            why = new RedisUnavailableError(
              `only ${acked} of ${want} replicas confirmed the write in ${timeoutMs} ms`,
            );
        } catch (err) {
          // A non-Error thrown value, wrapped to carry its text.
          why = err instanceof Error ? err : new Error(String(err));
        }
        if (why) for (const stream of group) failed.set(stream, why);
      }),
    );
    return failed;
  }

  /** Settle a batch; past the timeout, what has no reply yet counts as failed. */
  private async settle(pending: Promise<string>[]): Promise<PromiseSettledResult<string>[]> {
    const timeoutMs = this.opts.timeoutMs;
    if (timeoutMs <= 0) return Promise.allSettled(pending);
    const results: (PromiseSettledResult<string> | undefined)[] = [];
    const all = Promise.all(
      pending.map((p, i) =>
        p.then(
          (value) => void (results[i] = { status: 'fulfilled', value }),
          (reason: unknown) => void (results[i] = { status: 'rejected', reason }),
        ),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    const late = new RedisUnavailableError(`no reply from Redis within ${timeoutMs} ms`);
    return Array.from(pending, (_p, i) => results[i] ?? { status: 'rejected', reason: late });
  }

  private outcome(it: PublishItem, s: PromiseSettledResult<string>): PublishOutcome {
    const m = this.opts.metrics;
    if (s.status === 'fulfilled') {
      m?.published.inc({ stream: it.stream });
      return { status: 'added', id: s.value };
    }
    if (isDuplicateIdReply(s.reason)) {
      m?.publishDuplicates.inc({ stream: it.stream });
      return { status: 'duplicate', id: it.id ?? '*' };
    }
    m?.publishErrors.inc({ stream: it.stream });
    if (isNoPermReply(s.reason)) {
      return {
        status: 'error',
        error: new RedisPermissionError(`XADD ${it.stream} refused: ${errorMessage(s.reason)}`, {
          cause: s.reason,
        }),
      };
    }
    return {
      status: 'error',
      error: new RedisUnavailableError(`XADD ${it.stream} failed: ${errorMessage(s.reason)}`, {
        cause: s.reason,
      }),
    };
  }

  private trimFor(it: PublishItem): XAddOptions | undefined {
    const r = it.retention !== undefined ? it.retention : this.policyRetention(it.stream);
    return trimOptions(r, this.now());
  }

  /** The policy's retention of a stream, looked up once per name. */
  private policyRetention(stream: string): Retention | null {
    let r = this.retentionCache.get(stream);
    if (r === undefined) {
      r = this.policy.retention(stream);
      this.retentionCache.set(stream, r);
    }
    return r;
  }
}
