/**
 * Least privilege on Redis: one ACL user per marketbus service, each allowed exactly the commands it
 * sends on exactly the keys it touches. This module is the rules as data (a pure function of the
 * catalog); `render.ts` turns them into ACL file lines and `ACL SETUSER` commands.
 *
 * A user is a set of keyless commands (connection handshake, CLIENT UNBLOCK of its own blocked reads,
 * the functions' version check, ...) plus selectors (Redis 7): each selector pairs a few commands with the key patterns
 * they may touch, and a command runs when one selector allows it on all its keys. So the feed may XADD
 * to `md.*` but not delete from it, the runner may read and ack candles but not add any, and the API
 * reads the streams it relays (`%R~`) while writing only its sessions and the commands it sends.
 * Services run Lua only as the project's Redis Functions (FCALL of the `marketbus` library loaded by
 * the ops step, src/bus/functions.ts) and BullMQ's scripts by SHA (EVALSHA of what the ops step
 * preloaded, src/backtest/bull-scripts.ts): no service may EVAL, SCRIPT LOAD or FUNCTION LOAD, so none
 * runs Lua of its own (one `while true do end` would make Redis BUSY for all). Commands run inside a
 * function or script are checked the same way, so FCALL and EVALSHA give no extra rights.
 *
 * Every key pattern is built from the stream catalog (`src/bus/catalog.ts`) and the names the services
 * use (command services, the runner's consumer group, the backtest queue); `test/unit/acl.test.ts`
 * checks the patterns against names the catalog builds, and `test/integration/acl.test.ts` runs every
 * service as its user against a real Redis, so a command or key added to a service without a rule
 * here fails a test.
 */
import { CATALOG_PATTERNS, streams } from '../contracts/catalog.js';
import { InvalidKeyError } from '../util/errors.js';

/** The ACL users, one per service; `ops` is the operator CLI (streams, dlq). */
export const ACL_USERS = ['feed', 'runner', 'api', 'backtester', 'ops'] as const;
export type AclUser = (typeof ACL_USERS)[number];

export function isAclUser(name: string): name is AclUser {
  return (ACL_USERS as readonly string[]).includes(name);
}

/**
 * Key permission of a selector: `R` read only (`%R~`), `W` write only (`%W~`), `RW` both (`~`).
 * Redis decides per command which one it needs (XREADGROUP and XRANGE read, XADD and XACK write,
 * FCALL, EVALSHA and SET both).
 */
export type KeyAccess = 'R' | 'W' | 'RW';

export interface AclSelector {
  /** What the service does with it (documentation and `--json`). */
  readonly purpose: string;
  readonly access: KeyAccess;
  /** Redis glob patterns. */
  readonly keys: readonly string[];
  /** Lower-case command names, `container|subcommand` for subcommands. */
  readonly commands: readonly string[];
}

export interface AclUserRules {
  readonly user: AclUser;
  readonly description: string;
  /** Commands that take no key, allowed at the user's root. */
  readonly keyless: readonly string[];
  readonly selectors: readonly AclSelector[];
}

/** The names the rules are built from; each becomes part of a key pattern. */
export interface AclCatalog {
  /** Command service of the strategy runner (`mgmt:<name>:commands`, `<name>:mgmt:results`). */
  readonly runnerService: string;
  /** Command service of the backtester. */
  readonly backtestService: string;
  /** Consumer group of the runner on candle streams; its checkpoints are `cp:{<stream>}:<group>`. */
  readonly runnerGroup: string;
  /** BullMQ queue of backtests; its keys are `<bullPrefix>:<backtestQueue>:*`. */
  readonly backtestQueue: string;
  /** BullMQ key prefix (BullMQ's default is `bull`). */
  readonly bullPrefix: string;
}

// ---- key patterns (from the catalog) ----------------------------------------------------------

const CANDLES = 'md.candles.*';
const PRICES = 'md.prices.*';
const FEED_STATUS = 'md.status.*';
const EVENTS = 'strategy.events.v1.user.*';
const METRICS = 'strategy.metrics.v1.user.*';
/** The dead letters of a stream (or of every stream a pattern matches): `dlq:{<stream>}`. */
const dlqOf = (stream: string): string => `dlq:{${stream}}`;
/** The exactly-once marks of output streams: `hwm:{<stream>}` (src/bus/monotonic.ts). */
const hwmOf = (stream: string): string => `hwm:{${stream}}`;
/** Leases of candle streams: `lease:{<stream>}` (src/bus/lease.ts). */
const leaseOf = (stream: string): string => `lease:{${stream}}`;
/** Records of once-only replies on a stream: `once:{<stream>}:<id>` (src/jobs/reply-once.ts). */
const onceOf = (stream: string): string => `once:{${stream}}:*`;
/** Checkpoints of a group's candle subscriptions: `cp:{<stream>}:<group>` (src/bus/catalog.ts keys). */
const checkpointOf = (stream: string, group: string): string => `cp:{${stream}}:${group}`;
/** Every catalog stream, dead letters included (what `/api/v1/streams` and `streams trim` scan). */
const CATALOG: readonly string[] = CATALOG_PATTERNS;
/** Streams a dead letter may be replayed to: every catalog stream but candles (their IDs are data). */
const REPLAYABLE: readonly string[] = [
  PRICES,
  FEED_STATUS,
  ...CATALOG.filter((p) => p !== 'md.*' && p !== 'dlq:*'),
];

// ---- command sets -----------------------------------------------------------------------------

/**
 * Every connection: PING (readiness, CLI checks), SELECT (a configured `redis.db`), CLIENT SETNAME
 * (services name their connections), and on Redis Cluster the slot map (CLUSTER SLOTS) and ASK
 * redirections (ASKING). AUTH, HELLO and QUIT need no permission.
 */
const CONNECTION = ['ping', 'select', 'client|setname', 'cluster|slots', 'asking'];
/** A consumer reads on its own connection and ends that read with CLIENT UNBLOCK <its id>. */
const BLOCKING_READER = ['client|id', 'client|unblock'];
/** Dead letters move with their ack in one MULTI (src/bus/dead-letter.ts); rate-limit counts too. */
const TRANSACTION = ['multi', 'exec'];
/**
 * The version check of the `marketbus` functions at start (FCALL_RO marketbus_version 0,
 * src/bus/functions.ts). At the root it allows no keys, so only key-less functions: that one.
 */
const FUNCTIONS = ['fcall_ro'];
/** BullMQ's scripts are preloaded by the ops step; services check they are there (SCRIPT EXISTS). */
const BULLMQ_SCRIPTS = ['script|exists'];
/**
 * The operator loads the project's code (`marketbus redis functions load`): the functions library and
 * BullMQ's scripts. Only this user, the operator's, may install Lua; services run what it installed.
 */
const CODE_LOADER = ['function|load', 'script|load', 'script|exists'];
/** A consumer group member: create the group, read, ack, retry its own and reclaim dead consumers' entries. */
const GROUP_CONSUMER = ['xgroup|create', 'xreadgroup', 'xack', 'xpending', 'xclaim', 'xautoclaim'];
/** Inspecting streams and groups (src/bus/health.ts). */
const INSPECT = ['type', 'xinfo|stream', 'xinfo|groups', 'xinfo|consumers', 'xpending', 'xrange', 'xlen'];

/**
 * Every command BullMQ 6 sends for one queue: those its Lua scripts call (checked against
 * node_modules/bullmq/dist/esm/commands by the unit test, so an upgrade that needs more fails it)
 * and those its node-redis adapter sends itself (BZPOPMIN for the worker's blocking wait, the scans
 * of job listings). All are confined to the queue's keys by the selector. EVALSHA but no EVAL: BullMQ
 * runs only the scripts the ops step preloaded (src/backtest/bull-scripts.ts).
 */
export const BULLMQ_COMMANDS = [
  'evalsha',
  'bzpopmin',
  'del',
  'exists',
  'get',
  'hdel',
  'hexists',
  'hget',
  'hgetall',
  'hincrby',
  'hlen',
  'hmget',
  'hmset',
  'hscan',
  'hset',
  'incr',
  'incrby',
  'lindex',
  'llen',
  'lpop',
  'lpos',
  'lpush',
  'lrange',
  'lrem',
  'lset',
  'ltrim',
  'persist',
  'pexpire',
  'pexpireat',
  'pttl',
  'rename',
  'rpop',
  'rpoplpush',
  'rpush',
  'sadd',
  'scard',
  'set',
  'sismember',
  'smembers',
  'srem',
  'sscan',
  'type',
  'unlink',
  'xadd',
  'xdel',
  'xlen',
  'xrange',
  'xread',
  'xtrim',
  'zadd',
  'zcard',
  'zcount',
  'zlexcount',
  'zpopmin',
  'zrange',
  'zrangebylex',
  'zrangebyscore',
  'zrem',
  'zremrangebyrank',
  'zremrangebyscore',
  'zrevrange',
  'zrevrangebyscore',
  'zscore',
] as const;
/**
 * Keyless commands BullMQ needs: INFO (its Redis version check at connect) and TIME (called in its
 * scripts).
 */
const BULLMQ_KEYLESS = ['info', 'time'];

// ---- validation -------------------------------------------------------------------------------

/** Characters that are safe in a key pattern and in an ACL rule: no glob, no space, no braces. */
const PART_RE = /^[A-Za-z0-9_.-]{1,64}$/;

function checkPart(what: string, v: string): string {
  if (!PART_RE.test(v))
    throw new InvalidKeyError(what, v, `expected ${PART_RE.source} (it becomes part of an ACL key pattern)`);
  return v;
}

function validCatalog(c: AclCatalog): AclCatalog {
  // Service names go through the catalog's own check (they are parts of stream names).
  streams.serviceCommands(c.runnerService);
  streams.serviceCommands(c.backtestService);
  if (c.runnerService === c.backtestService)
    throw new InvalidKeyError('service', c.backtestService, 'runner and backtester need distinct services');
  checkPart('consumer group', c.runnerGroup);
  checkPart('queue name', c.backtestQueue);
  checkPart('BullMQ prefix', c.bullPrefix);
  return c;
}

// ---- the rules --------------------------------------------------------------------------------

const sel = (
  purpose: string,
  access: KeyAccess,
  keys: readonly string[],
  commands: readonly string[],
): AclSelector => ({ purpose, access, keys, commands });

/** A service that serves commands (src/jobs/server.ts): its commands, dead letters, replies, heartbeats. */
function commandServer(service: string): AclSelector[] {
  const commands = streams.serviceCommands(service);
  const results = streams.serviceResults(service);
  return [
    sel(`consume ${commands} (group ${service}.workers)`, 'RW', [commands], GROUP_CONSUMER),
    sel(`dead-letter malformed commands`, 'W', [dlqOf(commands)], ['xadd']),
    ...onceReplies(results, `answer on ${results}, once per command`),
    // Read back by the service's own container healthcheck (deploy/healthcheck/service-status.mjs).
    sel(`heartbeats`, 'RW', [streams.serviceStatus(service)], ['xadd', 'xrevrange']),
  ];
}

/**
 * Once-only entries on `stream` (src/commands/reply-once.ts): the function runs on the stream and its
 * record; inside it the XADD needs the stream, GET and SET need the record. Three selectors so that
 * neither gets the other's commands (no SET on a stream, no XADD on a record).
 */
function onceReplies(stream: string, purpose: string): AclSelector[] {
  return [
    sel(purpose, 'RW', [stream, onceOf(stream)], ['fcall']),
    sel(`${purpose}: the entry`, 'W', [stream], ['xadd']),
    sel(`${purpose}: the record`, 'RW', [onceOf(stream)], ['get', 'set']),
  ];
}

function bullQueue(c: AclCatalog, purpose: string): AclSelector {
  return sel(purpose, 'RW', [`${c.bullPrefix}:${c.backtestQueue}:*`], BULLMQ_COMMANDS);
}

/** The rules of every user for a catalog, in ACL_USERS order. Throws InvalidKeyError for a bad catalog. */
export function aclRules(catalog: AclCatalog): AclUserRules[] {
  const c = validCatalog(catalog);
  const runnerCommands = streams.serviceCommands(c.runnerService);
  const runnerResults = streams.serviceResults(c.runnerService);
  const backtestResults = streams.serviceResults(c.backtestService);
  const outputs = [EVENTS, METRICS];
  return [
    {
      user: 'feed',
      description: 'the market-data feed: adds candles, price snapshots and its status to md.*',
      keyless: CONNECTION,
      selectors: [
        sel(
          'publish candles, price snapshots and feed status',
          'W',
          [CANDLES, PRICES, FEED_STATUS],
          ['xadd'],
        ),
        sel('prime the publish gate from the last candle of each stream', 'R', [CANDLES], ['xrevrange']),
      ],
    },
    {
      user: 'runner',
      description: 'the strategy live runner: reads candles, writes strategy.* outputs, serves run/stop',
      keyless: [...CONNECTION, ...BLOCKING_READER, ...TRANSACTION, ...FUNCTIONS],
      selectors: [
        sel(
          `consume candles (group ${c.runnerGroup}) and replay them after a takeover`,
          'RW',
          [CANDLES],
          ['xgroup|create', 'xreadgroup', 'xack', 'xrange'],
        ),
        sel('dead-letter undecodable candles', 'W', [dlqOf(CANDLES)], ['xadd']),
        sel('subscription checkpoints', 'RW', [checkpointOf(CANDLES, c.runnerGroup)], ['get', 'set']),
        sel(
          'one owner per instrument (leases)',
          'RW',
          [leaseOf(CANDLES)],
          ['fcall', 'get', 'set', 'pexpire', 'del'],
        ),
        sel(
          'strategy outputs, once per run, kind and candle',
          'RW',
          [...outputs, ...outputs.map(hwmOf)],
          ['fcall'],
        ),
        sel('strategy outputs: the entries', 'W', outputs, ['xadd']),
        sel('strategy outputs: the high-water marks (and fencing stopped runs)', 'RW', outputs.map(hwmOf), [
          'hget',
          'hset',
        ]),
        ...commandServer(c.runnerService),
      ],
    },
    {
      user: 'api',
      description:
        'the API: reads the streams it relays and shows, writes its sessions, run/stop commands and backtest jobs',
      keyless: [
        ...CONNECTION,
        ...BLOCKING_READER,
        ...TRANSACTION,
        ...FUNCTIONS,
        ...BULLMQ_SCRIPTS,
        'scan',
        ...BULLMQ_KEYLESS,
      ],
      selectors: [
        sel(
          'live relay, strategy outputs and command results: read what it relays',
          'R',
          [CANDLES, PRICES, FEED_STATUS, EVENTS, METRICS, runnerResults],
          ['xread', 'xrange', 'xrevrange', 'xlen'],
        ),
        sel('bus health (GET /api/v1/streams)', 'R', CATALOG, INSPECT),
        sel(
          'sessions, one-time chat-link tokens and used login payloads',
          'RW',
          ['api:session:*', 'api:tglink:*', 'api:login-seen:*'],
          ['get', 'set', 'del', 'getdel', 'expire', 'ttl'],
        ),
        sel(
          'the sessions of each user (sign out everywhere, sessions per user)',
          'RW',
          ['api:user-sessions:*'],
          ['sadd', 'srem', 'smembers', 'expire', 'del'],
        ),
        sel(
          'rate-limit counters shared by API processes (src/api/limits/rate-counter.ts)',
          'RW',
          ['api:rl:*'],
          ['incr', 'pexpire', 'pttl'],
        ),
        sel('start and stop runs (commands to the runner)', 'W', [runnerCommands], ['xadd']),
        bullQueue(c, 'queue and cancel backtests'),
        ...onceReplies(backtestResults, 'announce backtests cancelled before they ran'),
      ],
    },
    {
      user: 'backtester',
      description: 'the backtester: serves backtest commands and runs the backtest job queue',
      keyless: [
        ...CONNECTION,
        ...BLOCKING_READER,
        ...TRANSACTION,
        ...FUNCTIONS,
        ...BULLMQ_SCRIPTS,
        ...BULLMQ_KEYLESS,
      ],
      selectors: [...commandServer(c.backtestService), bullQueue(c, 'the backtest job queue')],
    },
    {
      user: 'ops',
      description:
        'the operator CLI: inspect, tail and trim streams; list, replay and purge dead letters; load the functions',
      keyless: [...CONNECTION, ...BLOCKING_READER, ...TRANSACTION, 'scan', ...FUNCTIONS, ...CODE_LOADER],
      selectors: [
        sel(
          'inspect and tail streams, list dead letters: `streams inspect --match` takes any stream, so reading ' +
            'covers every key, with stream commands only (other key types stay closed)',
          'R',
          ['*'],
          [...INSPECT, 'xrevrange', 'xread'],
        ),
        sel('trim streams to their retention, remove idle consumers', 'W', CATALOG, [
          'xtrim',
          'xgroup|delconsumer',
        ]),
        sel('tail through a consumer group', 'RW', CATALOG, GROUP_CONSUMER),
        sel(
          'replay dead letters (not to candle streams: their IDs are data); dead-letter from a tail',
          'W',
          [...REPLAYABLE, 'dlq:*'],
          ['xadd'],
        ),
        sel('replay and purge dead letters', 'W', ['dlq:*'], ['xdel', 'del']),
      ],
    },
  ];
}
