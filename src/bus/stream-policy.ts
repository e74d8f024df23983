/**
 * What the bus needs to know of the streams it writes, inspects and trims, given by the caller: per
 * stream name its retention and ID mode, and the SCAN patterns that cover the streams. The bus itself
 * knows no stream names except its own dead-letter streams (`dlq:{<stream>}`, see dead-letter.ts).
 */
import type { XAddOptions } from '@redis/client/dist/lib/commands/XADD.js';
import { isDeadLetterStream } from './keys.js';

/** How a stream's old entries are dropped: by approximate length (MAXLEN ~) or by age (MINID ~). */
export type Retention =
  | {
      readonly kind: 'maxlen';
      /** Entries kept (approximately: Redis trims whole macro nodes). */
      readonly maxLen: number;
    }
  | {
      readonly kind: 'maxage';
      /** Entries whose ID time is older than this are dropped, ms. */
      readonly maxAgeMs: number;
    };

/**
 * `deterministic`: IDs are derived from the data (e.g. `<open time ms>-0`), so an entry added again with
 * an automatic ID would sort after later data and break the stream's order. `auto`: Redis assigns IDs.
 */
export type IdMode = 'deterministic' | 'auto';

/** What a policy tells of a stream beyond retention and ID mode, for health reports and metric labels. */
export interface StreamDescription {
  /** The stream's kind, e.g. `orders`; the `kind` label of the bus health gauges. */
  readonly kind: string;
}

export interface StreamPolicy {
  /** Retention applied on every XADD and by the trimmer; null: the stream is never trimmed. */
  retention(stream: string): Retention | null;
  /** How the stream's entry IDs are made; dead letters are not replayed into `deterministic` streams. */
  idMode(stream: string): IdMode;
  /** SCAN glob patterns that cover every stream to inspect (health) and trim. */
  readonly patterns: readonly string[];
  /**
   * The stream's description, shown in health reports (`StreamHealth.catalog`); null when the policy does
   * not know the name. Absent: no descriptions, and the metrics `kind` label is `other`.
   */
  describe?(stream: string): StreamDescription | null;
  /**
   * The `stream` label of the bus health gauges, e.g. one value for many per-user streams so that the
   * number of series stays bounded. Absent: the stream name.
   */
  metricStream?(stream: string): string;
}

/** The bound on a dead-letter stream when no policy says otherwise: the bus writes these streams itself. */
export const DEAD_LETTER_RETENTION: Retention = { kind: 'maxlen', maxLen: 100_000 };

/**
 * The policy used when the caller gives none: no retention (except dead-letter streams, kept at
 * `DEAD_LETTER_RETENTION`), automatic IDs, and the pattern `*` (every stream key).
 */
export const DEFAULT_STREAM_POLICY: StreamPolicy = {
  retention: (stream) => (isDeadLetterStream(stream) ? DEAD_LETTER_RETENTION : null),
  idMode: () => 'auto',
  patterns: ['*'],
};

/** The XADD trim options of a retention at time `now` (ms since epoch); undefined for none. */
export function trimOptions(r: Retention | null, now: number): XAddOptions | undefined {
  if (r === null) return undefined;
  if (r.kind === 'maxlen')
    return { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: r.maxLen } };
  // MINID takes an ID; `<ms>` alone means `<ms>-0`.
  return { TRIM: { strategy: 'MINID', strategyModifier: '~', threshold: Math.max(0, now - r.maxAgeMs) } };
}
