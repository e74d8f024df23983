import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ACL_CATALOG } from '../../src/acl/defaults.js';
import {
  aclFileLine,
  aclSetUserArgv,
  aclSetUserLine,
  aclTokens,
  passwordSecret,
  type AclSecret,
} from '../../src/acl/render.js';
import {
  ACL_USERS,
  BULLMQ_COMMANDS,
  aclRules,
  type AclCatalog,
  type AclUser,
  type AclUserRules,
} from '../../src/acl/rules.js';
import { aclSecrets, passwordEnvVar, selectUsers } from '../../src/acl/secrets.js';
import { sessionKey, userSessionsKey } from '../../src/api/auth/session.js';
import { loginSeenKey } from '../../src/api/auth/login-once.js';
import { rateLimitKey } from '../../src/api/limits/rate-counter.js';
import { linkKey } from '../../src/api/auth/chat-link.js';
import { keys, streams } from '../../src/contracts/catalog.js';
import { leaseKey } from '../../src/bus/lease.js';
import { highWaterKey } from '../../src/bus/monotonic.js';
import { ConfigError, InvalidKeyError } from '../../src/util/errors.js';
import { onceKey } from '../../src/commands/reply-once.js';
import { RUNNER_GROUP } from '../../src/contracts/catalog.js';
import { bullScripts } from '../../src/backtest/bull-scripts.js';

const NOPASS: AclSecret = { kind: 'nopass' };
const rules = aclRules(DEFAULT_ACL_CATALOG);
const of = (u: AclUser): AclUserRules => rules.find((r) => r.user === u) as AclUserRules;

const BULL =
  '+evalsha +bzpopmin +del +exists +get +hdel +hexists +hget +hgetall +hincrby +hlen +hmget +hmset ' +
  '+hscan +hset +incr +incrby +lindex +llen +lpop +lpos +lpush +lrange +lrem +lset +ltrim +persist +pexpire ' +
  '+pexpireat +pttl +rename +rpop +rpoplpush +rpush +sadd +scard +set +sismember +smembers +srem +sscan +type ' +
  '+unlink +xadd +xdel +xlen +xrange +xread +xtrim +zadd +zcard +zcount +zlexcount +zpopmin +zrange ' +
  '+zrangebylex +zrangebyscore +zrem +zremrangebyrank +zremrangebyscore +zrevrange +zrevrangebyscore +zscore';
const HEAD =
  'reset on nopass resetkeys resetchannels -@all +ping +select +client|setname +cluster|slots +asking';

/** The ACL file of the default catalog without passwords: what `marketbus redis acl --no-password` prints. */
const EXPECTED_FILE = [
  `user feed ${HEAD} (%W~md.candles.* %W~md.prices.* %W~md.status.* +xadd) (%R~md.candles.* +xrevrange)`,
  `user runner ${HEAD} +client|id +client|unblock +multi +exec +fcall_ro ` +
    '(~md.candles.* +xgroup|create +xreadgroup +xack +xrange) ' +
    '(%W~dlq:{md.candles.*} +xadd) ' +
    '(~cp:{md.candles.*}:strategy.live_runner +get +set) ' +
    '(~lease:{md.candles.*} +fcall +get +set +pexpire +del) ' +
    '(~strategy.events.v1.user.* ~strategy.metrics.v1.user.* ~hwm:{strategy.events.v1.user.*} ~hwm:{strategy.metrics.v1.user.*} +fcall) ' +
    '(%W~strategy.events.v1.user.* %W~strategy.metrics.v1.user.* +xadd) ' +
    '(~hwm:{strategy.events.v1.user.*} ~hwm:{strategy.metrics.v1.user.*} +hget +hset) ' +
    '(~mgmt:strategy:commands +xgroup|create +xreadgroup +xack +xpending +xclaim +xautoclaim) ' +
    '(%W~dlq:{mgmt:strategy:commands} +xadd) ' +
    '(~strategy:mgmt:results ~once:{strategy:mgmt:results}:* +fcall) ' +
    '(%W~strategy:mgmt:results +xadd) ' +
    '(~once:{strategy:mgmt:results}:* +get +set) ' +
    '(~strategy:status +xadd +xrevrange)',
  `user api ${HEAD} +client|id +client|unblock +multi +exec +fcall_ro +script|exists +scan +info +time ` +
    '(%R~md.candles.* %R~md.prices.* %R~md.status.* %R~strategy.events.v1.user.* %R~strategy.metrics.v1.user.* %R~strategy:mgmt:results +xread +xrange +xrevrange +xlen) ' +
    '(%R~md.* %R~strategy.* %R~mgmt:* %R~*:mgmt:results %R~*:status %R~dlq:* +type +xinfo|stream +xinfo|groups +xinfo|consumers +xpending +xrange +xlen) ' +
    '(~api:session:* ~api:tglink:* ~api:login-seen:* +get +set +del +getdel +expire +ttl) ' +
    '(~api:user-sessions:* +sadd +srem +smembers +expire +del) ' +
    '(~api:rl:* +incr +pexpire +pttl) ' +
    '(%W~mgmt:strategy:commands +xadd) ' +
    `(~bull:backtests:* ${BULL}) ` +
    '(~backtesting:mgmt:results ~once:{backtesting:mgmt:results}:* +fcall) ' +
    '(%W~backtesting:mgmt:results +xadd) ' +
    '(~once:{backtesting:mgmt:results}:* +get +set)',
  `user backtester ${HEAD} +client|id +client|unblock +multi +exec +fcall_ro +script|exists +info +time ` +
    '(~mgmt:backtesting:commands +xgroup|create +xreadgroup +xack +xpending +xclaim +xautoclaim) ' +
    '(%W~dlq:{mgmt:backtesting:commands} +xadd) ' +
    '(~backtesting:mgmt:results ~once:{backtesting:mgmt:results}:* +fcall) ' +
    '(%W~backtesting:mgmt:results +xadd) ' +
    '(~once:{backtesting:mgmt:results}:* +get +set) ' +
    '(~backtesting:status +xadd +xrevrange) ' +
    `(~bull:backtests:* ${BULL})`,
  `user ops ${HEAD} +client|id +client|unblock +multi +exec +scan +fcall_ro +function|load +script|load +script|exists ` +
    '(%R~* +type +xinfo|stream +xinfo|groups +xinfo|consumers +xpending +xrange +xlen +xrevrange +xread) ' +
    '(%W~md.* %W~strategy.* %W~mgmt:* %W~*:mgmt:results %W~*:status %W~dlq:* +xtrim +xgroup|delconsumer) ' +
    '(~md.* ~strategy.* ~mgmt:* ~*:mgmt:results ~*:status ~dlq:* +xgroup|create +xreadgroup +xack +xpending +xclaim +xautoclaim) ' +
    '(%W~md.prices.* %W~md.status.* %W~strategy.* %W~mgmt:* %W~*:mgmt:results %W~*:status %W~dlq:* +xadd) ' +
    '(%W~dlq:* +xdel +del)',
];

/** Redis glob matching for the patterns the rules use (literal text and `*` only). */
function globMatch(pattern: string, key: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return re.test(key);
}

/** May `user` run `command` on every one of `keys` (some selector allows the command on all of them)? */
function allows(user: AclUser, command: string, keyList: readonly string[], need: 'R' | 'W'): boolean {
  return of(user).selectors.some(
    (s) =>
      s.commands.includes(command) &&
      (s.access === 'RW' || s.access === need) &&
      keyList.every((k) => s.keys.some((p) => globMatch(p, k))),
  );
}

describe('ACL rules', () => {
  it('the ACL file of the default catalog, line by line', () => {
    expect(rules.map((r) => r.user)).toEqual([...ACL_USERS]);
    expect(rules.map((r) => aclFileLine(r, NOPASS))).toEqual(EXPECTED_FILE);
  });

  it('come from the names the services use', () => {
    expect(DEFAULT_ACL_CATALOG).toEqual({
      runnerService: 'strategy',
      backtestService: 'backtesting',
      runnerGroup: RUNNER_GROUP,
      backtestQueue: 'backtests',
      bullPrefix: 'bull',
    });
  });

  it('follow the catalog: another catalog gives other key patterns', () => {
    const c: AclCatalog = {
      runnerService: 'strat2',
      backtestService: 'bt2',
      runnerGroup: 'strategy.other',
      backtestQueue: 'jobs2',
      bullPrefix: 'q',
    };
    const lines = aclRules(c).map((r) => aclFileLine(r, NOPASS));
    const runner = lines[1] ?? '';
    expect(runner).toContain('(~cp:{md.candles.*}:strategy.other +get +set)');
    expect(runner).toContain('(~mgmt:strat2:commands +xgroup|create');
    expect(runner).toContain('(~strat2:status +xadd +xrevrange)');
    expect(lines[2]).toContain('(%W~mgmt:strat2:commands +xadd)');
    expect(lines[2]).toContain('%R~strat2:mgmt:results +xread');
    expect(lines[3]).toContain('(~q:jobs2:* +evalsha');
    expect(lines[3]).toContain('(~mgmt:bt2:commands +xgroup|create');
    expect(lines.join('\n')).not.toMatch(/strategy:|backtesting:|bull:|live_runner/);
  });

  it('let each service touch the keys the code builds, and not the others', () => {
    const candles = streams.candles('1m', 'binance:spot:BTCUSDT');
    const candles5 = streams.candles('5m', 'sim:fx:XAUUSD');
    const prices = streams.prices('binance:spot:BTCUSDT');
    const status = streams.feedStatus('binance');
    const events = streams.strategyEvents('u-1');
    const metrics = streams.strategyMetrics('u-1');
    const session = sessionKey('a'.repeat(43));
    const link = linkKey('b'.repeat(32));
    // feed: writes md.*, reads only the candle tops
    for (const s of [candles, candles5, prices, status]) expect(allows('feed', 'xadd', [s], 'W')).toBe(true);
    expect(allows('feed', 'xadd', [events], 'W')).toBe(false);
    expect(allows('feed', 'get', [session], 'R')).toBe(false);
    // runner: consumes candles, keeps checkpoints and leases, writes outputs once
    expect(allows('runner', 'xreadgroup', [candles], 'R')).toBe(true);
    expect(allows('runner', 'xack', [candles5], 'W')).toBe(true);
    expect(allows('runner', 'xadd', [candles], 'W')).toBe(false);
    expect(allows('runner', 'xadd', [streams.deadLetters(candles)], 'W')).toBe(true);
    expect(allows('runner', 'set', [keys.subscriptionCheckpoint(RUNNER_GROUP, candles)], 'W')).toBe(true);
    expect(allows('runner', 'set', [keys.subscriptionCheckpoint('strategy.other', candles)], 'W')).toBe(
      false,
    );
    expect(allows('runner', 'fcall', [leaseKey(candles)], 'W')).toBe(true);
    expect(allows('runner', 'fcall', [events, highWaterKey(events)], 'W')).toBe(true);
    expect(allows('runner', 'fcall', [metrics, highWaterKey(metrics)], 'W')).toBe(true);
    expect(allows('runner', 'hset', [highWaterKey(events)], 'W')).toBe(true);
    expect(allows('runner', 'set', [events], 'W')).toBe(false);
    const runnerResults = streams.serviceResults('strategy');
    expect(allows('runner', 'fcall', [runnerResults, onceKey(runnerResults, 'c-1')], 'W')).toBe(true);
    expect(allows('runner', 'set', [runnerResults], 'W')).toBe(false);
    expect(allows('runner', 'xadd', [streams.serviceCommands('strategy')], 'W')).toBe(false);
    // api: reads what it relays, writes sessions, links and run commands only
    for (const s of [candles, prices, status, events, metrics, runnerResults])
      expect(allows('api', 'xread', [s], 'R')).toBe(true);
    expect(allows('api', 'xread', [candles, prices, events, runnerResults], 'R')).toBe(true); // one XREAD, many streams
    for (const s of [candles, prices, status, events]) expect(allows('api', 'xadd', [s], 'W')).toBe(false);
    expect(allows('api', 'set', [session], 'W')).toBe(true);
    expect(allows('api', 'getdel', [link], 'W')).toBe(true);
    expect(allows('api', 'expire', [session], 'W')).toBe(true);
    expect(allows('api', 'sadd', [userSessionsKey('u-1')], 'W')).toBe(true);
    expect(allows('api', 'set', [loginSeenKey({ id: '1', hash: 'h' })], 'W')).toBe(true);
    expect(allows('api', 'sadd', [session], 'W')).toBe(false);
    expect(allows('runner', 'smembers', [userSessionsKey('u-1')], 'R')).toBe(false);
    expect(allows('api', 'incr', [rateLimitKey('login:203.0.113.9')], 'W')).toBe(true);
    expect(allows('api', 'incr', [session], 'W')).toBe(false);
    expect(allows('feed', 'incr', [rateLimitKey('login:203.0.113.9')], 'W')).toBe(false);
    expect(allows('api', 'xadd', [streams.serviceCommands('strategy')], 'W')).toBe(true);
    expect(allows('api', 'xadd', [streams.serviceCommands('backtesting')], 'W')).toBe(false);
    expect(allows('api', 'xgroup|create', [candles], 'W')).toBe(false);
    // backtester: its commands and its queue, no market data, no sessions
    expect(allows('backtester', 'xreadgroup', [streams.serviceCommands('backtesting')], 'R')).toBe(true);
    expect(allows('backtester', 'hset', ['bull:backtests:meta'], 'W')).toBe(true);
    expect(allows('backtester', 'xrange', [candles], 'R')).toBe(false);
    expect(allows('backtester', 'get', [session], 'R')).toBe(false);
    // ops: reads streams, trims, replays dead letters; no candles added, no sessions, no leases
    expect(allows('ops', 'xinfo|stream', [candles], 'R')).toBe(true);
    expect(allows('ops', 'xtrim', [candles], 'W')).toBe(true);
    expect(allows('ops', 'xadd', [streams.serviceCommands('strategy')], 'W')).toBe(true);
    expect(allows('ops', 'xdel', [streams.deadLetters(candles)], 'W')).toBe(true);
    expect(allows('ops', 'xadd', [candles], 'W')).toBe(false);
    expect(allows('ops', 'get', [session], 'R')).toBe(false);
    expect(allows('ops', 'set', [leaseKey(candles)], 'W')).toBe(false);
  });

  it('give nobody administration, key listing, Pub/Sub or a key-less write', () => {
    const never = [
      'acl',
      'config',
      'flushall',
      'flushdb',
      'keys',
      'shutdown',
      'debug',
      'module',
      'monitor',
      'replicaof',
      'swapdb',
      'migrate',
      'publish',
      'subscribe',
      'psubscribe',
      'script|flush',
      'function|delete',
      'function|flush',
      'function|restore',
      'client|kill',
      'client|list',
    ];
    for (const r of rules) {
      const all = [...r.keyless, ...r.selectors.flatMap((s) => s.commands)];
      for (const c of all)
        expect(
          never.some((n) => c === n || c.startsWith(`${n}|`)),
          `${r.user} ${c}`,
        ).toBe(false);
      for (const s of r.selectors) {
        // Only the operator reads every key, and then only with stream commands.
        if (s.keys.includes('*')) {
          expect(r.user).toBe('ops');
          expect(s.access).toBe('R');
        }
      }
    }
  });

  it('let no service run Lua of its own: FCALL, and EVALSHA only on the BullMQ queue', () => {
    const lua = ['eval', 'eval_ro', 'script|load', 'script|flush', 'function'];
    for (const r of rules) {
      const all = [...r.keyless, ...r.selectors.flatMap((s) => s.commands)];
      const loads = all.filter((c) => lua.some((n) => c === n || c.startsWith(`${n}|`)));
      // Only the operator installs code (`marketbus redis functions load`), and may not run it.
      expect(loads, r.user).toEqual(r.user === 'ops' ? ['function|load', 'script|load'] : []);
      // FCALL only in selectors (on the keys a function touches); at the root only read-only FCALL_RO.
      expect(r.keyless, r.user).not.toContain('fcall');
      for (const s of r.selectors)
        if (s.commands.includes('evalsha')) expect(s.keys, r.user).toEqual(['bull:backtests:*']);
    }
  });

  it('cover every command in the BullMQ scripts that are preloaded (an upgrade that needs more fails here)', () => {
    const scripts = bullScripts();
    expect(scripts.length).toBeGreaterThan(40);
    // What is preloaded is what BullMQ runs: its command files are in it.
    const dir = join('node_modules', 'bullmq', 'dist', 'esm', 'commands');
    const files = readdirSync(dir, { encoding: 'utf8' }).filter((f) => f.endsWith('.lua'));
    expect(new Set(scripts.map((x) => x.name))).toEqual(
      new Set(files.map((f) => f.replace(/-\d+\.lua$/, ''))),
    );
    const used = new Set<string>();
    for (const { lua } of scripts) {
      for (const m of lua.matchAll(/(?:rcall|redis\.p?call)\(\s*["']([A-Za-z]+)["']/g))
        used.add((m[1] ?? '').toLowerCase());
      for (const m of lua.matchAll(/=\s*["'](SSCAN|HSCAN|SCARD|HLEN|RPUSH|LPUSH)["']/g))
        used.add((m[1] ?? '').toLowerCase());
    }
    expect(used.size).toBeGreaterThan(40);
    const granted = new Set<string>([...BULLMQ_COMMANDS, 'time']); // TIME takes no key: a root command
    expect([...used].filter((c) => !granted.has(c))).toEqual([]);
  });
});

describe('ACL rendering', () => {
  const feed = of('feed');

  it('stores the SHA-256 of the password, never the password', () => {
    const secret = passwordSecret('correct horse');
    const line = aclFileLine(feed, secret);
    expect(line).toMatch(
      /^user feed reset on #4104d36f8da2c254349f85836793ebe029e0c957063a34c91c2e9203187b5631 resetkeys /,
    );
    expect(line).not.toContain('correct horse');
  });

  it('ACL SETUSER as argv (one selector per argument) and as a redis-cli line with quotes', () => {
    expect(aclSetUserArgv(feed, NOPASS)).toEqual(['ACL', 'SETUSER', 'feed', ...aclTokens(feed, NOPASS)]);
    expect(aclTokens(feed, NOPASS).slice(-2)).toEqual([
      '(%W~md.candles.* %W~md.prices.* %W~md.status.* +xadd)',
      '(%R~md.candles.* +xrevrange)',
    ]);
    expect(aclSetUserLine(feed, passwordSecret('correct horse'))).toBe(
      "ACL SETUSER feed reset on '#4104d36f8da2c254349f85836793ebe029e0c957063a34c91c2e9203187b5631' " +
        "resetkeys resetchannels -@all +ping +select '+client|setname' '+cluster|slots' +asking " +
        "'(%W~md.candles.* %W~md.prices.* %W~md.status.* +xadd)' '(%R~md.candles.* +xrevrange)'",
    );
  });

  it('refuses hostile catalogs', () => {
    const base = DEFAULT_ACL_CATALOG;
    const bad: Partial<AclCatalog>[] = [
      { runnerService: 'strategy*' },
      { runnerService: 'a b' },
      { backtestService: 'x) (~* +@all' },
      { backtestService: base.runnerService },
      { runnerGroup: 'g ~*' },
      { runnerGroup: '' },
      { runnerGroup: 'g}' },
      { backtestQueue: 'q*' },
      { backtestQueue: 'q?' },
      { bullPrefix: 'bull[ab]' },
      { bullPrefix: 'b\\x' },
      { bullPrefix: 'x'.repeat(65) },
    ];
    for (const b of bad)
      expect(() => aclRules({ ...base, ...b }), JSON.stringify(b)).toThrow(InvalidKeyError);
  });

  it('refuses rules that would smuggle a rule into the output', () => {
    const withSelector = (keys: string[], commands: string[]): AclUserRules => ({
      ...feed,
      selectors: [{ purpose: 'x', access: 'W', keys, commands }],
    });
    const hostile: AclUserRules[] = [
      withSelector(['md.* ~*'], ['xadd']),
      withSelector(['md.*)'], ['xadd']),
      withSelector(['md.[ab]'], ['xadd']),
      withSelector(['md.*'], ['@all']),
      withSelector(['md.*'], ['xadd +@all']),
      withSelector(['md.*'], ['XADD']),
      withSelector([], ['xadd']),
      withSelector(['md.*'], []),
      { ...feed, keyless: ['ping', '+@all'] },
      { ...feed, user: 'feed on nopass' as AclUser },
      { ...feed, selectors: [{ purpose: 'x', access: 'X' as 'R', keys: ['md.*'], commands: ['xadd'] }] },
    ];
    for (const r of hostile) expect(() => aclFileLine(r, NOPASS), JSON.stringify(r)).toThrow(InvalidKeyError);
    expect(() => aclFileLine(feed, { kind: 'password', sha256: 'abc allkeys' })).toThrow(InvalidKeyError);
  });
});

describe('ACL passwords and users', () => {
  it('reads MARKETBUS_REDIS_PASSWORD_<USER>; a missing one names its variable', () => {
    expect(ACL_USERS.map(passwordEnvVar)).toEqual([
      'MARKETBUS_REDIS_PASSWORD_FEED',
      'MARKETBUS_REDIS_PASSWORD_RUNNER',
      'MARKETBUS_REDIS_PASSWORD_API',
      'MARKETBUS_REDIS_PASSWORD_BACKTESTER',
      'MARKETBUS_REDIS_PASSWORD_OPS',
    ]);
    const env = { MARKETBUS_REDIS_PASSWORD_FEED: 'f-secret', MARKETBUS_REDIS_PASSWORD_API: '' };
    expect(aclSecrets(['feed'], { noPassword: false, env }).get('feed')).toEqual(passwordSecret('f-secret'));
    let err: unknown;
    try {
      aclSecrets(['feed', 'runner', 'api'], { noPassword: false, env });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).key).toBe('MARKETBUS_REDIS_PASSWORD_RUNNER');
    expect((err as ConfigError).message).toContain('also missing: MARKETBUS_REDIS_PASSWORD_API');
    expect((err as ConfigError).message).toContain('--no-password');
  });

  it('--no-password gives nopass to every user, and only when asked', () => {
    const s = aclSecrets([...ACL_USERS], { noPassword: true, env: {} });
    expect([...s.values()]).toEqual(ACL_USERS.map(() => NOPASS));
  });

  it('selects users by name, in a fixed order, and refuses unknown ones', () => {
    expect(selectUsers([])).toEqual([...ACL_USERS]);
    expect(selectUsers(['ops', 'feed', 'ops'])).toEqual(['feed', 'ops']);
    expect(() => selectUsers(['feed', 'default'])).toThrow(InvalidKeyError);
    expect(() => selectUsers(['*'])).toThrow(InvalidKeyError);
  });
});
