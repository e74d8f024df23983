/**
 * ACL rules as Redis reads them: the rule tokens of one user, an ACL file line
 * (`user feed reset on #<sha256> ...`), an `ACL SETUSER` line for redis-cli, and the argv for
 * `ACL SETUSER` sent by a client. Every token is checked before it is written, so no catalog name or
 * password can smuggle a rule (`+@all`, `~*`, a second selector) into the output.
 *
 * A user line starts with `reset` so that applying it again replaces the user entirely (old passwords
 * and selectors go), then `on`, the password's SHA-256 (`#<hex>`, never the password itself) or
 * `nopass`, `resetkeys resetchannels -@all`, the keyless commands, and one `(...)` selector per
 * purpose. No selector allows a Pub/Sub command, so channel rules never come into play.
 */
import { createHash } from 'node:crypto';
import { InvalidKeyError } from '../util/errors.js';
import type { AclSelector, AclUser, AclUserRules, KeyAccess } from './rules.js';

/** How a user authenticates: a password (stored by Redis as its SHA-256) or none (development). */
export type AclSecret = { readonly kind: 'password'; readonly sha256: string } | { readonly kind: 'nopass' };

export function passwordSecret(password: string): AclSecret {
  return { kind: 'password', sha256: createHash('sha256').update(password, 'utf8').digest('hex') };
}

const COMMAND_RE = /^[a-z][a-z0-9_-]*(\|[a-z][a-z0-9_-]*)?$/;
/** Literal parts of marketbus keys plus `*`; no `?`, `[`, `\`, spaces, parentheses or ACL operators. */
const KEY_PATTERN_RE = /^[A-Za-z0-9_.:{}*-]{1,200}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;
const USER_RE = /^[a-z][a-z0-9_-]{0,31}$/;

const KEY_PREFIX: Readonly<Record<KeyAccess, string>> = { R: '%R~', W: '%W~', RW: '~' };

function command(c: string): string {
  if (!COMMAND_RE.test(c)) throw new InvalidKeyError('ACL command', c, `expected ${COMMAND_RE.source}`);
  return `+${c}`;
}

function keyPattern(access: KeyAccess, k: string): string {
  if (!KEY_PATTERN_RE.test(k))
    throw new InvalidKeyError('ACL key pattern', k, `expected ${KEY_PATTERN_RE.source}`);
  const prefix = (KEY_PREFIX as Partial<Record<string, string>>)[access];
  if (prefix === undefined) throw new InvalidKeyError('ACL key access', access, 'expected R, W or RW');
  return `${prefix}${k}`;
}

function selector(s: AclSelector): string {
  if (s.keys.length === 0 || s.commands.length === 0)
    throw new InvalidKeyError('ACL selector', s.purpose, 'needs at least one key pattern and one command');
  return `(${[...s.keys.map((k) => keyPattern(s.access, k)), ...s.commands.map(command)].join(' ')})`;
}

function secretToken(secret: AclSecret): string {
  if (secret.kind === 'nopass') return 'nopass';
  if (!SHA256_RE.test(secret.sha256))
    throw new InvalidKeyError('password hash', secret.sha256, 'expected 64 lower-case hex digits (SHA-256)');
  return `#${secret.sha256}`;
}

function userName(u: AclUser): string {
  if (!USER_RE.test(u)) throw new InvalidKeyError('ACL user', u, `expected ${USER_RE.source}`);
  return u;
}

/** The rule tokens of one user, as `ACL SETUSER <user>` takes them (each selector is one token). */
export function aclTokens(rules: AclUserRules, secret: AclSecret): string[] {
  userName(rules.user);
  return [
    'reset',
    'on',
    secretToken(secret),
    'resetkeys',
    'resetchannels',
    '-@all',
    ...rules.keyless.map(command),
    ...rules.selectors.map(selector),
  ];
}

/** One line of an ACL file (`aclfile` in redis.conf, loaded at start or by ACL LOAD). */
export function aclFileLine(rules: AclUserRules, secret: AclSecret): string {
  return `user ${userName(rules.user)} ${aclTokens(rules, secret).join(' ')}`;
}

/** The argv of `ACL SETUSER` for a client's sendCommand. */
export function aclSetUserArgv(rules: AclUserRules, secret: AclSecret): string[] {
  return ['ACL', 'SETUSER', userName(rules.user), ...aclTokens(rules, secret)];
}

/**
 * Single quotes where a token is not plain: redis-cli reads such a line from stdin, and a shell takes
 * it after `redis-cli` (`#`, `|`, `*`, `(` and spaces stay literal). Tokens never hold a quote.
 */
function quote(token: string): string {
  return /^[A-Za-z0-9_.:+@-]+$/.test(token) ? token : `'${token}'`;
}

/** An `ACL SETUSER` line for redis-cli (stdin or a shell's command line). */
export function aclSetUserLine(rules: AclUserRules, secret: AclSecret): string {
  return aclSetUserArgv(rules, secret).map(quote).join(' ');
}
