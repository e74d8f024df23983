/**
 * Raw commands (parsed by the defensive parsers in replies.ts) on one server or a cluster. On a cluster
 * a command goes to the master owning its first key's slot; the key is found from the command's shape,
 * so callers write the same argv for both.
 */
import type { RedisClient } from './connection.js';
import { isCluster } from './connection.js';

/** Commands whose first key is the third word (`XINFO STREAM <key>`, `XGROUP CREATE <key> ...`). */
const SUBCOMMAND_KEY = new Set(['XINFO', 'XGROUP', 'OBJECT', 'MEMORY']);
/** Commands without a key: any node answers (on a cluster, a random one). */
const KEYLESS = new Set([
  'CLIENT',
  'SCRIPT',
  'FUNCTION',
  'INFO',
  'PING',
  'CLUSTER',
  'CONFIG',
  'ACL',
  'DBSIZE',
  'WAIT',
]);

/** The key a cluster routes `argv` by, or undefined for keyless commands. */
export function firstKeyOf(argv: readonly string[]): string | undefined {
  const cmd = (argv[0] ?? '').toUpperCase();
  if (KEYLESS.has(cmd)) return undefined;
  if (SUBCOMMAND_KEY.has(cmd)) return argv[2];
  if (['EVALSHA', 'EVAL', 'EVALSHA_RO', 'EVAL_RO', 'FCALL', 'FCALL_RO'].includes(cmd))
    return Number(argv[2]) > 0 ? argv[3] : undefined;
  if (cmd === 'XREAD' || cmd === 'XREADGROUP') {
    const i = argv.findIndex((a) => a.toUpperCase() === 'STREAMS');
    return i < 0 ? undefined : argv[i + 1];
  }
  return argv[1];
}

/**
 * Send `argv` and return the raw reply. `routeKey` overrides the routing key on a cluster (e.g. WAIT
 * must reach the master that took the writes).
 */
export function sendCommand(client: RedisClient, argv: string[], routeKey?: string): Promise<unknown> {
  if (isCluster(client)) return client.sendCommand(routeKey ?? firstKeyOf(argv), false, argv);
  return client.sendCommand(argv);
}
