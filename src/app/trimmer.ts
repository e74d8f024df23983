/**
 * Wiring of the trimmer: retention for streams that no longer get writes, and idle consumers removed
 * on its own Redis connection so it can be stopped apart from the services it trims for.
 */
import {
  closeRedis,
  connectRedis,
  type RedisClient,
  type RedisConnectionOptions,
} from '../bus/connection.js';
import { runTrimmer, type TrimmerOptions } from '../bus/trimmer.js';
import type { Logger } from '../util/log.js';
import { ServiceStack } from './stack.js';

export interface StartTrimmerOptions {
  readonly redis: RedisConnectionOptions;
  readonly log: Logger;
  /**
   * Passed as they are to the trimmer loop (retention per stream kind, idle consumer age, interval).
   * @defaultValue the trimmer's (see `TrimmerOptions`)
   */
  readonly trimmer?: Omit<TrimmerOptions, 'log'>;
}

export interface Trimmer extends AsyncDisposable {
  readonly redis: RedisClient;
  /** Same as `[Symbol.asyncDispose]()`: stops the loop (after its current pass), then Redis. Idempotent. */
  close(): Promise<void>;
}

export async function startTrimmer(o: StartTrimmerOptions): Promise<Trimmer> {
  const stack = new ServiceStack(o.log);
  return stack.start(async () => {
    const redis = await connectRedis({ ...o.redis, clientName: 'marketbus-trimmer' }, o.log);
    stack.defer('trimmer redis', () => closeRedis(redis));
    const stopping = new AbortController();
    const loop = runTrimmer(redis, stopping.signal, { ...o.trimmer, log: o.log });
    stack.defer('trimmer', async () => {
      stopping.abort();
      await loop;
    });
    const close = (): Promise<void> => stack.close();
    return { redis, close, [Symbol.asyncDispose]: close };
  });
}
