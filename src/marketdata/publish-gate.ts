/**
 * Remembers the newest candle published per stream, so nothing older or equal is published again
 * (a publish gate per stream). Primed from Redis (the stream's last ID) when Redis answers; Redis
 * itself refuses older explicit IDs too, so an unprimed gate is only less efficient, never wrong.
 */
import type { RedisClient } from '../bus/connection.js';
import { epochMsOfId } from '../bus/stream-id.js';
import { parseEntries } from '../bus/replies.js';
import { sendCommand } from '../bus/raw-command.js';

export class PublishGate {
  private readonly last = new Map<string, number>();

  /** True (and remembered) when `tsOpen` is newer than what the stream has. */
  admit(stream: string, tsOpen: number): boolean {
    const prev = this.last.get(stream);
    if (prev !== undefined && tsOpen <= prev) return false;
    this.last.set(stream, tsOpen);
    return true;
  }

  lastOf(stream: string): number | undefined {
    return this.last.get(stream);
  }

  /** Load the last entry ID of each stream; streams Redis cannot answer for are left unprimed. */
  async prime(redis: RedisClient, streams: readonly string[]): Promise<void> {
    await Promise.all(
      streams.map(async (s) => {
        try {
          const top = parseEntries(
            await sendCommand(redis, ['XREVRANGE', s, '+', '-', 'COUNT', '1']),
            'XREVRANGE',
          ).entries[0];
          if (top) this.last.set(s, Math.max(this.last.get(s) ?? 0, epochMsOfId(top.id)));
        } catch {
          // best effort: Redis rejects duplicates on its own
        }
      }),
    );
  }
}
