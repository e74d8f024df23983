/**
 * BullMQ's Lua, preloaded into the script cache by a privileged connection. BullMQ runs its scripts
 * with EVALSHA and cannot use Redis Functions; when the script is missing it sends EVAL with the
 * source. The service users keep only EVALSHA, confined by their selector to the queue's keys, and no
 * EVAL or SCRIPT LOAD (src/acl/rules.ts): they can run exactly the scripts loaded here, never Lua of
 * their own. The list is BullMQ's own (the `scripts` module its RedisConnection defines its commands
 * from), so what is loaded is byte for byte what BullMQ runs, for the pinned BullMQ version.
 *
 * The script cache is not persisted or replicated: after a restart of an external Redis the scripts
 * must be loaded again (`marketbus redis functions load`; the embedded server of `marketbus up` is
 * reloaded by its supervisor). docs/acl.md has the details.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { RedisNodeClient } from '../bus/connection.js';
import { RedisCodeNotLoadedError } from '../bus/functions.js';
import { isNoPermReply } from '../bus/redis-errors.js';

interface BullScript {
  readonly name: string;
  readonly content: string;
}

/** BullMQ's scripts module (CommonJS; the package has no export map for it). */
const BULL_SCRIPTS_MODULE = 'bullmq/dist/cjs/scripts/index.js';

function isBullScript(v: unknown): v is BullScript {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { name?: unknown }).name === 'string' &&
    typeof (v as { content?: unknown }).content === 'string'
  );
}

/** Every Lua script BullMQ may run, with its SHA-1 (what EVALSHA names). */
export function bullScripts(): readonly {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}[] {
  const mod: unknown = createRequire(import.meta.url)(BULL_SCRIPTS_MODULE);
  return Object.values(mod as Record<string, unknown>)
    .filter(isBullScript)
    .map((s) => ({ name: s.name, lua: s.content, sha: createHash('sha1').update(s.content).digest('hex') }));
}

/** The methods of a node-redis client that `withoutNeedlessScriptLoad` replaces and uses. */
interface ScriptCacheClient {
  scriptLoad(lua: string): Promise<string>;
  scriptExists(sha: string): Promise<number[]>;
  duplicate(...args: unknown[]): object;
}

/**
 * BullMQ's node-redis adapter sends SCRIPT LOAD for each script when it defines its commands, and
 * ignores the outcome. The scripts are preloaded and service users may not SCRIPT LOAD, so the client
 * handed to BullMQ asks SCRIPT EXISTS first and loads only a missing script: a preloaded server sees
 * no refused command at every start, a privileged connection on a bare server still loads them (so
 * BullMQ's EVALSHA inside MULTI finds them). Duplicates (the worker's blocking connection is one)
 * behave the same.
 */
export function withoutNeedlessScriptLoad<C extends object>(client: C): C {
  const c = client as unknown as ScriptCacheClient;
  const load = c.scriptLoad.bind(c);
  const exists = c.scriptExists.bind(c);
  const scriptLoad = async (lua: string): Promise<string> => {
    const sha = createHash('sha1').update(lua).digest('hex');
    const [known] = await exists(sha);
    return Number(known) === 1 ? sha : load(lua);
  };
  const duplicate = c.duplicate.bind(c);
  Object.defineProperty(client, 'scriptLoad', { value: scriptLoad, configurable: true });
  Object.defineProperty(client, 'duplicate', {
    value: (...args: unknown[]) => withoutNeedlessScriptLoad(duplicate(...args)),
    configurable: true,
  });
  return client;
}

/** SCRIPT LOAD of every BullMQ script (BullMQ runs on one server only: no cluster). */
export async function loadBullScripts(client: RedisNodeClient): Promise<number> {
  const all = bullScripts();
  for (const s of all) await client.sendCommand(['SCRIPT', 'LOAD', s.lua]);
  return all.length;
}

/**
 * Make sure BullMQ's scripts are in the server's cache: SCRIPT EXISTS, and SCRIPT LOAD of the missing
 * ones when the connection may. A service user gets RedisCodeNotLoadedError naming the step to run.
 */
export async function ensureBullScripts(client: RedisNodeClient): Promise<void> {
  const all = bullScripts();
  const exists = await client.sendCommand<number[]>(['SCRIPT', 'EXISTS', ...all.map((s) => s.sha)]);
  const missing = all.filter((_s, i) => Number(exists[i]) !== 1);
  try {
    for (const s of missing) await client.sendCommand(['SCRIPT', 'LOAD', s.lua]);
  } catch (err) {
    if (isNoPermReply(err)) throw new RedisCodeNotLoadedError(`${missing.length} BullMQ scripts are`, err);
    throw err;
  }
}
