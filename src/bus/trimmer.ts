/**
 * Stream limits and cleanup (seed 001's configure_stream_limits and cleanup): retention per catalog
 * entry is applied on every write by the producer; this trimmer applies it too to streams that no
 * longer get writes (MAXLEN ~ or MINID ~ by age), and removes consumers that have been idle longer than
 * `idleConsumerMs` with no pending entries.
 */
import { sleep } from '../util/sleep.js';
import {
  CATALOG_PATTERNS,
  DEFAULT_RETENTION,
  describeStream,
  type Retention,
  type StreamKind,
} from '../contracts/catalog.js';
import type { RedisClient } from './connection.js';
import { scanStreams } from './health.js';
import { parseConsumers, parseGroups } from './replies.js';
import type { Logger } from '../util/log.js';
import { errorMessage } from '../util/errors.js';
import { sendCommand } from './raw-command.js';

export interface TrimmerOptions {
  /** Retention per catalog kind, overriding DEFAULT_RETENTION. */
  readonly retention?: Partial<Record<StreamKind, Retention>>;
  /** Consumers idle longer than this with nothing pending are deleted, ms. Default 86400000 (1 day). */
  readonly idleConsumerMs?: number;
  /** Pause between passes, ms. Default 60000. */
  readonly intervalMs?: number;
  readonly log?: Logger;
  /** Clock for MINID, ms. Default Date.now. */
  readonly now?: () => number;
}

export interface TrimResult {
  readonly streams: number;
  /** Entries removed by XTRIM. */
  readonly trimmed: number;
  readonly consumersRemoved: number;
}

/** One pass over every catalog stream. */
export async function trimOnce(client: RedisClient, o: TrimmerOptions = {}): Promise<TrimResult> {
  const now = (o.now ?? Date.now)();
  const idleMs = o.idleConsumerMs ?? 86_400_000;
  let trimmed = 0;
  let consumersRemoved = 0;
  const names = new Set<string>();
  for (const p of CATALOG_PATTERNS) for (const n of await scanStreams(client, p)) names.add(n);
  for (const stream of names) {
    const entry = describeStream(stream);
    if (!entry) continue;
    const r = o.retention?.[entry.kind] ?? DEFAULT_RETENTION[entry.kind];
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
  o: TrimmerOptions = {},
): Promise<void> {
  while (!signal.aborted) {
    try {
      const r = await trimOnce(client, o);
      if (r.trimmed > 0 || r.consumersRemoved > 0) o.log?.info({ ...r }, 'streams trimmed');
    } catch (err) {
      o.log?.warn({ err: errorMessage(err) }, 'trim pass failed');
    }
    await sleep(o.intervalMs ?? 60_000, signal);
  }
}
