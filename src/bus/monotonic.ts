/**
 * Exactly-once effect for outputs derived from an ordered input: each output has a key (e.g.
 * `<run>:signal`) and a sequence number (e.g. the input candle's open time). An output is added only
 * if its sequence is above the highest one already added for that key; the check, the XADD and the
 * high-water mark update are one Redis function (src/bus/functions.ts), so a redelivered input can never produce a second output.
 * The marks live in `hwm:{<stream>}` (a hash, one field per output key), in the stream's slot.
 */
import type { RedisClient } from './connection.js';
import { callFunction } from './functions.js';
import type { Retention } from './stream-policy.js';

export function highWaterKey(stream: string): string {
  return `hwm:{${stream}}`;
}

export interface MonotonicOutput {
  readonly stream: string;
  /** What the sequence is counted for, e.g. `<run_id>:metric`. */
  readonly key: string;
  /** Must grow for each new output of `key` (e.g. the input's epoch ms). */
  readonly seq: number;
  readonly fields: Readonly<Record<string, string>>;
  readonly retention?: Retention | null;
}

function trimArgs(r: Retention | null | undefined, now: number): [string, string] {
  if (!r) return ['none', '0'];
  return r.kind === 'maxlen'
    ? ['maxlen', String(r.maxLen)]
    : ['minid', String(Math.max(0, now - r.maxAgeMs))];
}

/**
 * `addOnce` for many outputs of ONE stream in one function call (outputs in array order; the retention
 * of the first applies). Returns, per output, the new entry ID or null.
 */
export async function addOnceMany(
  client: RedisClient,
  stream: string,
  outputs: readonly Omit<MonotonicOutput, 'stream'>[],
  now = Date.now(),
): Promise<(string | null)[]> {
  if (outputs.length === 0) return [];
  const args: string[] = [...trimArgs(outputs[0]?.retention, now)];
  for (const o of outputs) {
    const flat: string[] = [];
    for (const [k, v] of Object.entries(o.fields)) flat.push(k, v);
    args.push(o.key, String(o.seq), String(flat.length), ...flat);
  }
  const res = await callFunction(client, 'add_once_many', [stream, highWaterKey(stream)], args);
  const list = Array.isArray(res) ? (res as unknown[]) : [];
  return outputs.map((_o, i) => {
    const id = list[i];
    return typeof id === 'string' ? id : null;
  });
}

/** Add the output unless its sequence is not above the last one for its key; returns the new entry ID or null. */
export async function addOnce(
  client: RedisClient,
  o: MonotonicOutput,
  now = Date.now(),
): Promise<string | null> {
  const trim = trimArgs(o.retention, now);
  const flat: string[] = [];
  for (const [k, v] of Object.entries(o.fields)) flat.push(k, v);
  const res = await callFunction(
    client,
    'add_once',
    [o.stream, highWaterKey(o.stream)],
    [o.key, String(o.seq), ...trim, ...flat],
  );
  return typeof res === 'string' ? res : null;
}
