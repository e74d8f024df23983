/**
 * Which users to write and how each authenticates. Passwords come from the environment,
 * `MARKETBUS_REDIS_PASSWORD_<USER>` (`MARKETBUS_REDIS_PASSWORD_FEED`, ...); a missing one is an error
 * naming the variable, unless passwords are explicitly turned off (`--no-password`, development).
 */
import { ConfigError, InvalidKeyError } from '../util/errors.js';
import { passwordSecret, type AclSecret } from './render.js';
import { ACL_USERS, isAclUser, type AclUser } from './rules.js';

export function passwordEnvVar(user: AclUser): string {
  return `MARKETBUS_REDIS_PASSWORD_${user.toUpperCase()}`;
}

/** The named users, without repeats, in ACL_USERS order; all of them when `names` is empty. */
export function selectUsers(names: readonly string[]): AclUser[] {
  for (const n of names) {
    if (!isAclUser(n)) throw new InvalidKeyError('service', n, `expected one of ${ACL_USERS.join(', ')}`);
  }
  return names.length === 0 ? [...ACL_USERS] : ACL_USERS.filter((u) => names.includes(u));
}

/**
 * The secret of each user: the SHA-256 of its password from the environment, or `nopass` for all
 * when `noPassword` is true. Throws ConfigError naming the first missing variable (and listing the others).
 */
export function aclSecrets(
  users: readonly AclUser[],
  opts: { readonly noPassword: boolean; readonly env?: NodeJS.ProcessEnv },
): Map<AclUser, AclSecret> {
  const out = new Map<AclUser, AclSecret>();
  if (opts.noPassword) {
    for (const u of users) out.set(u, { kind: 'nopass' });
    return out;
  }
  const env = opts.env ?? process.env;
  const missing: string[] = [];
  for (const u of users) {
    const v = env[passwordEnvVar(u)];
    if (v === undefined || v === '') missing.push(passwordEnvVar(u));
    else out.set(u, passwordSecret(v));
  }
  const [first, ...others] = missing;
  if (first !== undefined) {
    throw new ConfigError(
      first,
      `not set: it holds the password of the Redis user ${first.slice('MARKETBUS_REDIS_PASSWORD_'.length).toLowerCase()}` +
        (others.length > 0 ? ` (also missing: ${others.join(', ')})` : '') +
        '; set it, or pass --no-password for a development server (users without passwords)',
    );
  }
  return out;
}
