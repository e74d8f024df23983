/**
 * `marketbus redis acl`: the Redis ACL users of the services (src/acl/), printed as an ACL file
 * (default), as `ACL SETUSER` lines for redis-cli, as JSON, or applied to the Redis of `--redis` /
 * `REDIS_URL` with `--apply` (which needs a connection allowed to run ACL SETUSER: an admin user).
 * `--apply` also loads the Lua the services run, like `marketbus redis functions load`: the
 * `marketbus` functions library on every master and BullMQ's scripts (src/app/redis-code.ts), which
 * the service users may run but not load.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_ACL_CATALOG } from '../../acl/defaults.js';
import { aclFileLine, aclSetUserArgv, aclSetUserLine, type AclSecret } from '../../acl/render.js';
import { ACL_USERS, aclRules, isAclUser, type AclUser, type AclUserRules } from '../../acl/rules.js';
import { aclSecrets, passwordEnvVar, selectUsers } from '../../acl/secrets.js';
import { loadRedisCode } from '../../app/redis-code.js';
import { isCluster, type RedisClient } from '../../bus/connection.js';
import { FUNCTION_LIBRARY, FUNCTIONS_VERSION } from '../../bus/functions.js';
import { MarketbusError, errorMessage } from '../../util/errors.js';
import { cliContext, withRedis } from '../context.js';

interface AclOptions {
  service: string[];
  format: 'file' | 'commands';
  json?: boolean;
  password: boolean;
  apply?: boolean;
}

/** Redis refused an `ACL SETUSER` (typically: the connection's user may not administer ACLs). */
export class AclApplyError extends MarketbusError {
  readonly user: string;
  constructor(user: string, cause: unknown) {
    super(
      'ACL_APPLY_FAILED',
      `ACL SETUSER ${user} failed: ${errorMessage(cause)}. --apply needs a connection allowed to run ACL SETUSER (an admin user in --redis / REDIS_URL)`,
      { cause },
    );
    this.user = user;
  }
}

function collectUsers(v: string, prev: string[]): string[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!isAclUser(n))
      throw new InvalidArgumentError(
        `unknown service ${JSON.stringify(n)}: expected ${ACL_USERS.join(', ')}.`,
      );
  }
  return [...prev, ...names];
}

export function redisCommand(): Command {
  const cmd = new Command('redis').description('Redis administration for marketbus');
  cmd
    .command('acl')
    .description(
      'ACL users, one per service (feed, runner, api, backtester, ops), each allowed only the commands and keys it uses; ' +
        'passwords from MARKETBUS_REDIS_PASSWORD_<USER>',
    )
    .option(
      '--service <user>',
      `only these users (repeat or comma-separate): ${ACL_USERS.join(', ')}; default all`,
      collectUsers,
      [],
    )
    .addOption(
      new Option(
        '--format <format>',
        'file: ACL file lines (aclfile in redis.conf); commands: ACL SETUSER lines for redis-cli',
      )
        .choices(['file', 'commands'])
        .default('file'),
    )
    .addOption(
      new Option(
        '--json',
        'the rules as JSON: per user its keyless commands and selectors with their purpose',
      )
        .conflicts('format')
        .conflicts('apply'),
    )
    .option('--no-password', 'users without a password (nopass): for a development server only')
    .option(
      '--apply',
      'run ACL SETUSER for each user on the Redis of --redis / REDIS_URL (needs an admin connection)',
    )
    .action(async (o: AclOptions, c: Command) => {
      const users = selectUsers(o.service);
      const secrets = aclSecrets(users, { noPassword: !o.password });
      const rules = aclRules(DEFAULT_ACL_CATALOG).filter((r) => users.includes(r.user));
      const secretOf = (u: AclUser): AclSecret => secrets.get(u) ?? { kind: 'nopass' };
      if (o.apply) {
        await withRedis(cliContext(c), async (redis) => {
          for (const r of rules) await applyUser(redis, r, secretOf(r.user));
          await loadCode(redis);
        });
        for (const r of rules)
          process.stdout.write(
            `applied ACL user ${r.user} (${o.password ? `password from ${passwordEnvVar(r.user)}` : 'no password'})\n`,
          );
        return;
      }
      if (o.json) {
        const out = rules.map((r) => ({
          user: r.user,
          description: r.description,
          password_env: o.password ? passwordEnvVar(r.user) : null,
          keyless: r.keyless,
          selectors: r.selectors,
          acl_file_line: aclFileLine(r, secretOf(r.user)),
        }));
        process.stdout.write(`${JSON.stringify({ users: out }, null, 2)}\n`);
        return;
      }
      const line = o.format === 'commands' ? aclSetUserLine : aclFileLine;
      for (const r of rules) process.stdout.write(`${line(r, secretOf(r.user))}\n`);
    });
  cmd
    .command('functions')
    .description('the Lua the services run (they may not load it)')
    .command('load')
    .description(
      `load the marketbus functions library (version ${FUNCTIONS_VERSION}) on every master and BullMQ's scripts ` +
        'into the Redis of --redis / REDIS_URL (needs an admin or the ops user); again after an external Redis lost its script cache (a restart)',
    )
    .action(async (_o: unknown, c: Command) => {
      await withRedis(cliContext(c), loadCode);
    });
  return cmd;
}

async function loadCode(redis: RedisClient): Promise<void> {
  const loaded = await loadRedisCode(redis);
  process.stdout.write(
    `loaded functions library ${FUNCTION_LIBRARY} version ${FUNCTIONS_VERSION} on ${loaded.functionNodes} ` +
      `server(s) and ${loaded.bullScripts} BullMQ scripts\n`,
  );
}

/** ACL SETUSER on the server, or on every node of a cluster (each node keeps its own users). */
async function applyUser(redis: RedisClient, r: AclUserRules, secret: AclSecret): Promise<void> {
  const argv = aclSetUserArgv(r, secret);
  try {
    if (!isCluster(redis)) {
      await redis.sendCommand(argv);
      return;
    }
    for (const node of [...redis.masters, ...redis.replicas]) {
      const client = await redis.nodeClient(node);
      await client.sendCommand(argv);
    }
  } catch (err) {
    throw new AclApplyError(r.user, err);
  }
}
