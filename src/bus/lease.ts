/**
 * Leases: one owner at a time for a named piece of work (an instrument), held by a key with a TTL and
 * renewed while the owner lives. An owner that dies loses the lease when the TTL runs out, and another
 * takes it. Renew and release check the owner in one Redis function (src/bus/functions.ts), so nobody extends or drops a lease that
 * has passed to someone else.
 */
import type { RedisClient } from './connection.js';
import { callFunction } from './functions.js';

/** `lease:{<name>}` (hash tag: the lease of a stream lives in the stream's slot). */
export function leaseKey(name: string): string {
  return `lease:{${name}}`;
}

/** Take the lease if free, or renew it if we hold it. True when we hold it afterwards. */
export async function holdLease(
  client: RedisClient,
  name: string,
  owner: string,
  ttlMs: number,
): Promise<boolean> {
  const key = leaseKey(name);
  if ((await callFunction(client, 'lease_renew', [key], [owner, String(ttlMs)])) === 1) return true;
  const set = await client.set(key, owner, { condition: 'NX', expiration: { type: 'PX', value: ttlMs } });
  return set === 'OK';
}

export async function releaseLease(client: RedisClient, name: string, owner: string): Promise<boolean> {
  return (await callFunction(client, 'lease_release', [leaseKey(name)], [owner])) === 1;
}

export async function leaseOwner(client: RedisClient, name: string): Promise<string | null> {
  return client.get(leaseKey(name));
}
