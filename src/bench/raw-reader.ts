/**
 * The benches' latency floor: ONE plain node-redis client reading streams with an `XREAD BLOCK` loop,
 * with nothing of marketbus between Redis and the reader (no consumer group, no relay). ws-bench and the
 * soak's `raw` probe compare the WebSocket relay's delivery latency against it in the same run.
 */
import { parseEntries, parseReadReply, type StreamEntry } from '../bus/replies.js';
import { InvalidArgumentError } from '../util/errors.js';

/** The one command the reader needs, so any node-redis client (or cluster node client) fits. */
export interface CommandClient {
  sendCommand(args: string[]): Promise<unknown>;
}

/** The newest ID of each stream ('0-0' for an empty or missing one): where a loop reading only new entries starts. */
export async function latestIds(client: CommandClient, streams: readonly string[]): Promise<string[]> {
  return Promise.all(
    streams.map(async (s) => {
      const { entries } = parseEntries(
        await client.sendCommand(['XREVRANGE', s, '+', '-', 'COUNT', '1']),
        'XREVRANGE',
      );
      return entries[0]?.id ?? '0-0';
    }),
  );
}

export interface ReadLoopOptions {
  /** Checked before each XREAD; the loop ends (within one `blockMs`) once it returns false. */
  readonly running: () => boolean;
  /** Each stream's entries of one reply, in order, with the time the reply arrived (`now()`). */
  readonly onBatch: (stream: string, entries: readonly StreamEntry[], receivedAt: number) => void;
  /** The receive clock, epoch ms; default `Date.now` (whole ms). ws-bench passes a sub-ms clock. */
  readonly now?: () => number;
  /** Entries per stream per XREAD (`COUNT`); default 500, enough that a burst drains in few round trips. */
  readonly count?: number;
  /** How long one XREAD waits for new entries (`BLOCK`), ms; default 1000, so a stop takes at most ~1 s. */
  readonly blockMs?: number;
}

/**
 * `XREAD COUNT <count> BLOCK <blockMs> STREAMS <streams> <cursors>` until `running()` is false, moving
 * each stream's cursor past what it delivered. `cursors` (one per stream, usually from `latestIds`) is
 * updated in place. Rejects on the first Redis error.
 */
export async function readLoop(
  client: CommandClient,
  streams: readonly string[],
  cursors: string[],
  o: ReadLoopOptions,
): Promise<void> {
  if (cursors.length !== streams.length)
    throw new InvalidArgumentError(
      'readLoop cursors',
      `${cursors.length} cursors for ${streams.length} streams`,
    );
  const now = o.now ?? Date.now;
  const head = ['XREAD', 'COUNT', String(o.count ?? 500), 'BLOCK', String(o.blockMs ?? 1000), 'STREAMS'];
  const index = new Map(streams.map((s, i) => [s, i]));
  while (o.running()) {
    const reply = await client.sendCommand([...head, ...streams, ...cursors]);
    const receivedAt = now();
    for (const b of parseReadReply(reply, 'XREAD')) {
      o.onBatch(b.stream, b.entries, receivedAt);
      const last = b.entries[b.entries.length - 1];
      const i = index.get(b.stream);
      if (last && i !== undefined) cursors[i] = last.id;
    }
  }
}
