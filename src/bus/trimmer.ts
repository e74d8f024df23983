/**
 * Stream limits and cleanup: the policy's retention is
 * applied on every write by the producer; this trimmer applies it too to streams that no longer get
 * writes (MAXLEN ~ or MINID ~ by age), and removes consumers that have been idle longer than
 * `idleConsumerMs` with no pending entries. Streams the policy gives no retention are left alone
 * (neither trimmed nor their consumers removed): they are not the policy's to clean.
 */
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { sleep } from '../util/sleep.js';
import type { RedisClient } from './connection.js';
import { scanStreams } from './health.js';
import { parseConsumers, parseGroups } from './replies.js';
import type { Logger } from '../util/log.js';
import { errorMessage } from '../util/errors.js';
import { sendCommand } from './raw-command.js';
import { DEFAULT_STREAM_POLICY, type StreamPolicy } from './stream-policy.js';

export interface TrimmerOptions {
  /**
   * Gives each stream's retention and the SCAN patterns of the streams to trim.
   * @defaultValue `DEFAULT_STREAM_POLICY` (only dead-letter streams have a retention; pattern `*`)
   */
  readonly policy?: StreamPolicy;
  /**
   * SCAN glob patterns of the streams to trim.
   * @defaultValue the policy's `patterns`
   */
  readonly patterns?: readonly string[];
  /**
   * Consumers idle longer than this with nothing pending are deleted, ms.
   * @defaultValue 86400000 (1 day)
   */
  readonly idleConsumerMs?: number;
  /**
   * Pause between passes of `runTrimmer`, ms.
   * @defaultValue 60000
   */
  readonly intervalMs?: number;
  /**
   * Where `runTrimmer` reports passes that trimmed something, and failed passes.
   * @defaultValue none
   */
  readonly log?: Logger;
  /**
   * Clock for MINID, ms since epoch.
   * @defaultValue `Date.now`
   */
  readonly now?: () => number;
}

/** The defaults of {@link TrimmerOptions}, applied by `trimOnce` and `runTrimmer`. */
export const TRIMMER_DEFAULTS = Object.freeze({
  policy: DEFAULT_STREAM_POLICY,
  idleConsumerMs: 86_400_000,
  intervalMs: 60_000,
  now: Date.now,
} satisfies Partial<TrimmerOptions>);

type ResolvedTrimmerOptions = WithDefaults<TrimmerOptions, typeof TRIMMER_DEFAULTS>;

export interface TrimResult {
  /** Streams the patterns matched (with or without retention). */
  readonly streams: number;
  /** Entries removed by XTRIM. */
  readonly trimmed: number;
  readonly consumersRemoved: number;
}

/** One pass over every stream the patterns match. */
export function trimOnce(client: RedisClient, o: TrimmerOptions = {}): Promise<TrimResult> {
  return trimPass(client, withDefaults(TRIMMER_DEFAULTS, o));
}

async function trimPass(client: RedisClient, o: ResolvedTrimmerOptions): Promise<TrimResult> {
  const now = o.now();
  const idleMs = o.idleConsumerMs;
  let trimmed = 0;
  let consumersRemoved = 0;
  const policy = o.policy;
  const names = new Set<string>();
  for (const p of o.patterns ?? policy.patterns) for (const n of await scanStreams(client, p)) names.add(n);
  for (const stream of names) {
    const r = policy.retention(stream);
    if (r === null) continue;
    const removed =
      r.kind === 'maxlen'
        ? await sendCommand(client, ['XTRIM', stream, 'MAXLEN', '~', String(r.maxLen)])
        : await sendCommand(client, ['XTRIM', stream, 'MINID', '~', String(Math.max(0, now - r.maxAgeMs))]);
    trimmed += Number(removed) || 0;
    for (const g of parseGroups(await sendCommand(client, ['XINFO', 'GROUPS', stream]))) {
      for (const c of parseConsumers(await sendCommand(client, ['XINFO', 'CONSUMERS', stream, g.name]))) {
        if (c.pending === 0 && c.idleMs > idleMs) {
          await sendCommand(client, ['XGROUP', 'DELCONSUMER', stream, g.name, c.name]);
          consumersRemoved++;
        }
      }
    }
  }
  return { streams: names.size, trimmed, consumersRemoved };
}

/** Run `trimOnce` every `intervalMs` until the signal aborts; errors are logged and the next pass goes on. */
export async function runTrimmer(
  client: RedisClient,
  signal: AbortSignal,
  options: TrimmerOptions = {},
): Promise<void> {
  const o = withDefaults(TRIMMER_DEFAULTS, options);
  while (!signal.aborted) {
    try {
      const r = await trimPass(client, o);
      if (r.trimmed > 0 || r.consumersRemoved > 0) o.log?.info({ ...r }, 'streams trimmed');
    } catch (err) {
      o.log?.warn({ err: errorMessage(err) }, 'trim pass failed');
    }
    await sleep(o.intervalMs, signal);
  }
}
