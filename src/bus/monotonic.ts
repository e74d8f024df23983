/**
 * Exactly-once effect for outputs derived from an ordered input: each output has a key (e.g.
 * `<run>:signal`) and a sequence number (e.g. the input candle's open time). An output is added only
 * if its sequence is above the highest one already added for that key; the check, the XADD and the
 * high-water mark update are one Lua script, so a redelivered input can never produce a second output.
 * The marks live in `hwm:{<stream>}` (a hash, one field per output key), in the stream's slot.
 */
import type { RedisClient } from './connection.js';
import { Script } from './scripts.js';
import type { Retention } from './stream-policy.js';

const ADD_ONCE = new Script(`
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if tonumber(ARGV[2]) <= last then return false end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] == 'maxlen' then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
elseif ARGV[3] == 'minid' then
  return redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[4], '*', unpack(ARGV, 5))
end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
`);

/**
 * Many outputs of one stream in one call. ARGV: trim kind, trim arg, then per output: key, seq, number
 * of field/value items, the items. Returns per output the new entry ID or false.
 */
const ADD_ONCE_MANY = new Script(`
local out = {}
local i = 3
while i <= #ARGV do
  local key = ARGV[i]
  local seq = tonumber(ARGV[i + 1])
  local n = tonumber(ARGV[i + 2])
  local last = tonumber(redis.call('HGET', KEYS[2], key) or '-1')
  if seq > last then
    redis.call('HSET', KEYS[2], key, ARGV[i + 1])
    local args = {KEYS[1]}
    if ARGV[1] == 'maxlen' then
      table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, ARGV[2])
    elseif ARGV[1] == 'minid' then
      table.insert(args, 'MINID'); table.insert(args, '~'); table.insert(args, ARGV[2])
    end
    table.insert(args, '*')
    for j = 1, n do table.insert(args, ARGV[i + 2 + j]) end
    out[#out + 1] = redis.call('XADD', unpack(args))
  else
    out[#out + 1] = false
  end
  i = i + 3 + n
end
return out
`);

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
 * `addOnce` for many outputs of ONE stream in one script call (outputs in array order; the retention
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
  const res = await ADD_ONCE_MANY.run(client, [stream, highWaterKey(stream)], args);
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
  const res = await ADD_ONCE.run(
    client,
    [o.stream, highWaterKey(o.stream)],
    [o.key, String(o.seq), ...trim, ...flat],
  );
  return typeof res === 'string' ? res : null;
}
