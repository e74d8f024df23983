/**
 * Lua scripts of the core, loaded once per client (SCRIPT LOAD) and run with EVALSHA, reloaded after
 * NOSCRIPT (a restarted Redis forgets scripts). Every key a script touches is passed in KEYS and
 * shares one Cluster slot (hash tags), so scripts work on Redis Cluster too.
 */
import { createHash } from 'node:crypto';
import { isNoScriptReply } from './redis-errors.js';
import type { RedisClient } from './connection.js';
import { sendCommand } from './raw-command.js';

export class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const argv = ['EVALSHA', this.sha, String(keys.length), ...keys, ...args];
    try {
      return await sendCommand(client, argv);
    } catch (err) {
      if (!isNoScriptReply(err)) throw err;
      // On a cluster the script must be loaded on the node that owns the keys.
      await sendCommand(client, ['SCRIPT', 'LOAD', this.source], keys[0]);
      return sendCommand(client, argv);
    }
  }
}
