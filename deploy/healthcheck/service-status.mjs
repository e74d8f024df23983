#!/usr/bin/env node
// Container healthcheck of a command service that serves no HTTP (the backtester):
//
//   node deploy/healthcheck/service-status.mjs <service> [--any-host]
//
// Exit 0 when an instance of <service> started on this host (its name is `<hostname>-<pid>`, the
// default consumer name) heartbeated `state=running` on `<service>:status` within three of its
// intervals (docs/contracts.md §11.4, src/commands/status.ts); 1 otherwise, with the reason on
// stderr. `--any-host` accepts an instance of any host. Redis from REDIS_URL (the service's own ACL user:
// every service may read its own status stream); one Redis server, not a cluster.
import { hostname } from 'node:os';
import { createClient } from 'redis';

const [service, ...flags] = process.argv.slice(2);
if (!service || !/^[a-z][a-z0-9_-]{0,63}$/.test(service)) {
  process.stderr.write('usage: service-status.mjs <service> [--any-host]\n');
  process.exit(2);
}
const anyHost = flags.includes('--any-host');
const prefix = `${hostname()}-`;

const client = createClient({
  url: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  socket: { connectTimeout: 2000, reconnectStrategy: false },
});
client.on('error', () => undefined); // reported by the command that fails

let code = 1;
try {
  await client.connect();
  // Newest first; each instance's latest heartbeat decides.
  const entries = await client.xRevRange(`${service}:status`, '+', '-', { COUNT: 500 });
  const seen = new Set();
  const now = Date.now();
  for (const { message: f } of entries) {
    const instance = f.instance ?? '';
    if (!instance || seen.has(instance)) continue;
    seen.add(instance);
    if (!anyHost && !instance.startsWith(prefix)) continue;
    const age = now - Date.parse(f.time ?? '');
    if (f.state === 'running' && age <= 3 * Number(f.interval_ms ?? 5000)) {
      code = 0;
      break;
    }
  }
  if (code !== 0)
    process.stderr.write(
      `no running ${service} instance${anyHost ? '' : ` of ${hostname()}`} heartbeat recently on ${service}:status\n`,
    );
} catch (err) {
  process.stderr.write(`${service}:status unreadable: ${err instanceof Error ? err.message : String(err)}\n`);
} finally {
  await client.quit().catch(() => undefined);
}
process.exit(code);
