/**
 * The Lua of the core as one Redis Functions library (`marketbus`), loaded once with
 * `FUNCTION LOAD REPLACE` by a privileged connection (`marketbus up` on its embedded server, the ops
 * step `marketbus redis functions load`, `marketbus redis acl --apply`) and called by the services with
 * FCALL. Services then need no EVAL, EVALSHA or SCRIPT LOAD: they run only the functions loaded here,
 * never Lua of their own (docs/acl.md). Unlike the script cache, functions are kept in the AOF/RDB and
 * replicated, so a restarted server or a promoted replica still has them.
 *
 * Every function name carries the library's version (a hash of its code), and `marketbus_version`
 * (read-only) returns it: a service of another version finds its functions missing instead of calling
 * different code by the same name, and loading replaces the old library as a whole. Every key a
 * function touches is passed in KEYS and shares one Cluster slot (hash tags).
 */
import { createHash } from 'node:crypto';
import { masterClients, type RedisClient, type RedisNodeClient } from './connection.js';
import { sendCommand } from './raw-command.js';
import { isNoFunctionReply, isNoPermReply } from './redis-errors.js';
import { MarketbusError, errorMessage } from '../util/errors.js';

/** The functions of the library: their Lua bodies take `(KEYS, ARGV)`. */
const BODIES = {
  /**
   * Exactly-once output (src/bus/monotonic.ts). KEYS: stream, its high-water hash. ARGV: output key,
   * seq, trim kind, trim arg, field/value items.
   */
  add_once: `
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if tonumber(ARGV[2]) <= last then return false end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] == 'maxlen' then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
elseif ARGV[3] == 'minid' then
  return redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[4], '*', unpack(ARGV, 5))
end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))`,
  /**
   * Many outputs of one stream. ARGV: trim kind, trim arg, then per output: key, seq, number of
   * field/value items, the items. Returns per output the new entry ID or false.
   */
  add_once_many: `
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
return out`,
  /** Renew a lease we hold (src/bus/lease.ts). KEYS: the lease. ARGV: owner, ttl ms. */
  lease_renew: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
  /** Drop a lease we hold. KEYS: the lease. ARGV: owner. */
  lease_release: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  /**
   * Once-only entry (src/commands/reply-once.ts). KEYS: stream, its once record. ARGV: record ttl ms,
   * trim kind, trim arg, field/value items. Returns {1, id} when added, {0, earlier id} otherwise.
   */
  publish_once: `
local prev = redis.call('GET', KEYS[2])
if prev then return {0, prev} end
local id
if ARGV[2] == 'maxlen' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
elseif ARGV[2] == 'minid' then
  id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[3], '*', unpack(ARGV, 4))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
end
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {1, id}`,
} as const;

export type MarketbusFunction = keyof typeof BODIES;

/** The library name (one per server; loading replaces it). */
export const FUNCTION_LIBRARY = 'marketbus';

/** The version of the library: the first 12 hex digits of the SHA-1 of its function bodies. */
export const FUNCTIONS_VERSION = createHash('sha1')
  .update(JSON.stringify(Object.entries(BODIES)))
  .digest('hex')
  .slice(0, 12);

const VERSION_FUNCTION = 'marketbus_version';

/** The name a function is registered under in this version (`<name>_<version>`). */
export function functionName(fn: MarketbusFunction): string {
  return `${fn}_${FUNCTIONS_VERSION}`;
}

/** The library's source, as `FUNCTION LOAD` takes it. */
export const FUNCTION_LIBRARY_SOURCE = [
  `#!lua name=${FUNCTION_LIBRARY}`,
  ...Object.entries(BODIES).map(
    ([fn, body]) =>
      `redis.register_function('${functionName(fn as MarketbusFunction)}', function(KEYS, ARGV)${body}\nend)`,
  ),
  `redis.register_function{function_name='${VERSION_FUNCTION}', flags={'no-writes'}, ` +
    `callback=function() return '${FUNCTIONS_VERSION}' end}`,
  '',
].join('\n');

/** The library is missing (or of another version) and this connection may not load it. */
export class RedisCodeNotLoadedError extends MarketbusError {
  constructor(what: string, cause?: unknown) {
    super(
      'REDIS_CODE_NOT_LOADED',
      `${what} not loaded on Redis and this connection may not load them` +
        `${cause === undefined ? '' : ` (${errorMessage(cause)})`}: run \`marketbus redis functions load\` ` +
        'with an admin connection (--redis / REDIS_URL)',
      cause === undefined ? undefined : { cause },
    );
  }
}

/** `FUNCTION LOAD REPLACE` of the library on the server, or on every master of a cluster; returns how many. */
export async function loadFunctions(client: RedisClient): Promise<number> {
  const nodes = await masterClients(client);
  for (const node of nodes) await node.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', FUNCTION_LIBRARY_SOURCE]);
  return nodes.length;
}

async function hasLibrary(node: RedisNodeClient): Promise<boolean> {
  try {
    const version: unknown = await node.sendCommand(['FCALL_RO', VERSION_FUNCTION, '0']);
    return version === FUNCTIONS_VERSION;
  } catch (err) {
    if (isNoFunctionReply(err)) return false;
    throw err;
  }
}

/**
 * Make sure this version of the library is on the server (every master of a cluster): present, or
 * loaded now when the connection may (FUNCTION LOAD). Services call it at start; a service user (no
 * `function|load`) gets RedisCodeNotLoadedError naming the step to run.
 */
export async function ensureFunctions(client: RedisClient): Promise<void> {
  for (const node of await masterClients(client)) {
    if (await hasLibrary(node)) continue;
    try {
      await node.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', FUNCTION_LIBRARY_SOURCE]);
    } catch (err) {
      if (isNoPermReply(err))
        throw new RedisCodeNotLoadedError(`the marketbus functions (version ${FUNCTIONS_VERSION}) are`, err);
      throw err;
    }
  }
}

/**
 * FCALL of one of the library's functions. A server that lost it (an external Redis restarted
 * without persistence, a replaced library) gets it again when the connection may load it.
 */
export async function callFunction(
  client: RedisClient,
  fn: MarketbusFunction,
  keys: readonly string[],
  args: readonly string[],
): Promise<unknown> {
  const argv = ['FCALL', functionName(fn), String(keys.length), ...keys, ...args];
  try {
    return await sendCommand(client, argv);
  } catch (err) {
    if (!isNoFunctionReply(err)) throw err;
    await ensureFunctions(client);
    return sendCommand(client, argv);
  }
}
