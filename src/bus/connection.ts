import { createClient, createCluster } from 'redis';
import { ConfigError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { backoffDelay } from '../util/backoff.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';

/** The client type marketbus uses everywhere (node-redis 5, RESP2 by default, default modules). */
/** A connection to one Redis server (or one node of a cluster). */
export type RedisNodeClient = ReturnType<typeof createNodeClient>;
/** A Redis Cluster connection: routes commands by key slot, follows MOVED/ASK, rediscovers on failover. */
export type RedisClusterClient = ReturnType<typeof createClusterClient>;
/** The client type marketbus uses everywhere (node-redis 5, RESP2, default modules): one server or a cluster. */
export type RedisClient = RedisNodeClient | RedisClusterClient;

/** True when the client talks to a Redis Cluster. */
export function isCluster(r: RedisClient): r is RedisClusterClient {
  return 'masters' in r;
}

/** How to reach Redis. `url` wins over host/port/db/password when both are given. */
export interface RedisConnectionOptions {
  /**
   * `redis://[user:pass@]host:port[/db]` or `rediss://` for TLS.
   * @defaultValue none (host/port/db)
   */
  readonly url?: string;
  /**
   * Host name or address of the server (without `url`).
   * @defaultValue `127.0.0.1`
   */
  readonly host?: string;
  /**
   * TCP port of the server (without `url`).
   * @defaultValue 6379
   */
  readonly port?: number;
  /**
   * Database index (without `url`); a cluster has only 0.
   * @defaultValue 0
   */
  readonly db?: number;
  /**
   * ACL user name.
   * @defaultValue none (`default`)
   */
  readonly username?: string | undefined;
  /**
   * The password itself (already read from the environment variable that the config names).
   * @defaultValue none
   */
  readonly password?: string | undefined;
  /**
   * Use TLS with host/port (a `rediss://` URL implies it).
   * @defaultValue false
   */
  readonly tls?: boolean;
  /**
   * TCP (and TLS) connect timeout, ms.
   * @defaultValue 2000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Longest wait for replies, ms, for components that bound their waits: the producer (per batch) and
   * the consumer's blocking read (on top of its block time). Not applied per command by the client,
   * which would cost a timer per command; those components read it (with this default) themselves.
   * @defaultValue 2000
   */
  readonly commandTimeoutMs?: number;
  /**
   * First reconnect delay, ms; doubles up to `reconnectMaxMs`, with jitter.
   * @defaultValue 100
   */
  readonly reconnectBaseMs?: number;
  /**
   * Largest reconnect delay, ms.
   * @defaultValue 5000
   */
  readonly reconnectMaxMs?: number;
  /**
   * Most commands queued while disconnected or waiting for replies, commands; past it commands fail
   * at once instead of growing memory.
   * @defaultValue 100000
   */
  readonly maxQueuedCommands?: number;
  /**
   * Attempts to connect before `connect()` gives up when the server has never answered (a one-shot
   * command should fail fast), attempts. Once connected, reconnects never give up.
   * @defaultValue none (never give up)
   */
  readonly initialConnectAttempts?: number;
  /**
   * CLIENT SETNAME, shown by CLIENT LIST.
   * @defaultValue none (no name)
   */
  readonly clientName?: string;
  /**
   * Talk to a Redis Cluster: `url` (or host/port) is one seed node, `clusterNodes` more seeds. The
   * client routes by key slot, follows MOVED/ASK and rediscovers the slots after a failover.
   * @defaultValue false
   */
  readonly cluster?: boolean;
  /**
   * More seed nodes of the cluster (`redis://host:port` each), tried when the first is down.
   * @defaultValue none (only the first seed)
   */
  readonly clusterNodes?: readonly string[];
  /**
   * Replicas that must have a published batch before the feed counts it as written (WAIT; see
   * ProducerOptions.waitReplicas), replicas; read by the feed with this default.
   * @defaultValue 0
   */
  readonly waitReplicas?: number;
}

/**
 * The defaults of {@link RedisConnectionOptions}, applied by `createRedisClient` and `describeRedis`
 * (`commandTimeoutMs` and `waitReplicas` by the components that use them).
 */
export const REDIS_CONNECTION_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 6379,
  db: 0,
  tls: false,
  connectTimeoutMs: 2000,
  commandTimeoutMs: 2000,
  reconnectBaseMs: 100,
  reconnectMaxMs: 5000,
  maxQueuedCommands: 100_000,
  cluster: false,
  waitReplicas: 0,
} satisfies Partial<RedisConnectionOptions>);

/** Connection options with their defaults applied. */
type ResolvedConnectionOptions = WithDefaults<RedisConnectionOptions, typeof REDIS_CONNECTION_DEFAULTS>;

/**
 * Cluster settings from the environment: `REDIS_CLUSTER=true` (or `1`) makes the Redis URL a cluster
 * seed; `REDIS_CLUSTER_NODES` adds seeds, comma-separated. Other values of REDIS_CLUSTER are an error.
 */
export function clusterOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Pick<RedisConnectionOptions, 'cluster' | 'clusterNodes'> {
  const flag = env['REDIS_CLUSTER']?.trim().toLowerCase();
  if (flag === undefined || flag === '' || flag === 'false' || flag === '0') return {};
  if (flag !== 'true' && flag !== '1')
    throw new ConfigError(
      'REDIS_CLUSTER',
      `expected true or false, got ${JSON.stringify(env['REDIS_CLUSTER'])}`,
    );
  const nodes = (env['REDIS_CLUSTER_NODES'] ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  nodes.forEach((n) => validateRedisUrl(n, 'REDIS_CLUSTER_NODES'));
  return { cluster: true, ...(nodes.length > 0 ? { clusterNodes: nodes } : {}) };
}

/** Connection options from `REDIS_URL` (and `REDIS_CLUSTER`) on top of the given ones. */
export function redisOptionsFromEnv(
  base: RedisConnectionOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): RedisConnectionOptions {
  const url = env['REDIS_URL']?.trim();
  return url ? { ...base, url, ...clusterOptionsFromEnv(env) } : base;
}

/** Read a password from the environment variable a config names (`password_env`); the key names the setting. */
export function passwordFromEnv(
  varName: string | undefined,
  key: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (!varName) return undefined;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(varName))
    throw new ConfigError(key, `not a valid environment variable name: ${varName}`);
  const v = env[varName];
  return v === undefined || v === '' ? undefined : v;
}

export function validateRedisUrl(url: string, key = 'redis.url'): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(key, `not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(key, `scheme must be redis:// or rediss://, got ${parsed.protocol}//`);
  }
  return parsed;
}

/** A human-readable target with the password removed, for logs. */
export function describeRedis(options: RedisConnectionOptions): string {
  const opts = withDefaults(REDIS_CONNECTION_DEFAULTS, options);
  if (opts.url) {
    const u = validateRedisUrl(opts.url);
    u.password = u.password ? '***' : '';
    return u.toString();
  }
  return `${opts.tls ? 'rediss' : 'redis'}://${opts.host}:${opts.port}/${opts.db}`;
}

function nodeClientOptions(opts: ResolvedConnectionOptions, everReady: () => boolean) {
  const base = opts.reconnectBaseMs;
  const max = opts.reconnectMaxMs;
  return {
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    ...(opts.clientName ? { name: opts.clientName } : {}),
    socket: {
      ...(opts.tls && !opts.url ? { tls: true as const } : {}),
      connectTimeout: opts.connectTimeoutMs,
      reconnectStrategy: (retries: number, cause: Error) => {
        if (
          !everReady() &&
          opts.initialConnectAttempts !== undefined &&
          retries + 1 >= opts.initialConnectAttempts
        )
          return cause;
        return backoffDelay({ baseMs: base, maxMs: max, jitter: 0.5 }, retries + 1);
      },
    },
    commandsQueueMaxLength: opts.maxQueuedCommands,
    // CLIENT SETINFO is not in any service's ACL (Redis 7.0 does not know it, so rules cannot name it);
    // without this, Redis 7.2+ logs a refusal per connection.
    disableClientInfo: true,
  };
}

function createNodeClient(opts: ResolvedConnectionOptions) {
  let everReady = false;
  const node = nodeClientOptions(opts, () => everReady);
  const client = createClient({
    ...node,
    ...(opts.url ? { url: opts.url } : {}),
    ...(opts.db !== undefined && !opts.url ? { database: opts.db } : {}),
    socket: {
      ...node.socket,
      ...(opts.url ? {} : { host: opts.host, port: opts.port }),
    },
  });
  client.on('ready', () => (everReady = true));
  return client;
}

function seedUrls(opts: ResolvedConnectionOptions): string[] {
  const first = opts.url ?? `${opts.tls ? 'rediss' : 'redis'}://${opts.host}:${opts.port}`;
  return [first, ...(opts.clusterNodes ?? [])];
}

/** How often the slots are re-read while a cluster node errors, ms. */
const CLUSTER_REFRESH_MS = 250;

function createClusterClient(opts: ResolvedConnectionOptions) {
  if (opts.db !== undefined && opts.db !== 0)
    throw new ConfigError('redis.db', 'Redis Cluster has only database 0');
  let everReady = false;
  const seeds = seedUrls(opts);
  seeds.forEach((u, i) => validateRedisUrl(u, i === 0 ? 'redis.url' : `redis.cluster_nodes[${i - 1}]`));
  const cluster = createCluster({
    rootNodes: seeds.map((url) => ({ url })),
    defaults: nodeClientOptions(opts, () => everReady),
    // Replicas are for failover here, not reads: a consumer must see its own acks and writes.
    useReplicas: false,
    maxCommandRedirections: 16,
  });
  cluster.on('connect', () => (everReady = true));
  followFailovers(cluster);
  return cluster;
}

/**
 * node-redis re-reads the slots only on MOVED/ASK; a master that died keeps its commands waiting on
 * reconnects. While any node errors, re-read the slots from a live node every so often: once the
 * replica is promoted the dead address drops out, its client is closed, and its waiting commands fail
 * (callers retry) instead of hanging.
 */
function followFailovers(cluster: RedisClusterClient): void {
  let refresh: NodeJS.Timeout | undefined;
  cluster.on('node-error', () => {
    if (refresh !== undefined || !cluster.isOpen) return;
    refresh = setTimeout(() => {
      refresh = undefined;
      const live = cluster.masters.map((m) => m.client).find((c) => c?.isReady === true);
      if (live && cluster.isOpen) cluster._slots.rediscover(live).catch(() => undefined);
    }, CLUSTER_REFRESH_MS);
    refresh.unref();
  });
}

/**
 * A second connection like `client` (for blocking reads), not connected yet. `commandTimeoutMs`
 * bounds each command on it. A cluster's copy follows failovers like the original.
 */
export function duplicateRedis(client: RedisClient, opts: { commandTimeoutMs?: number } = {}): RedisClient {
  const overrides =
    opts.commandTimeoutMs === undefined ? {} : { commandOptions: { timeout: opts.commandTimeoutMs } };
  if (!isCluster(client)) return client.duplicate(overrides);
  const copy = client.duplicate(overrides);
  followFailovers(copy);
  return copy;
}

/**
 * Create (not connect) a node-redis client with marketbus's defaults: bounded command queue, command
 * timeout, reconnect with jittered exponential backoff, and errors routed to the logger (an unhandled
 * 'error' event would otherwise crash the process). With `cluster: true` the URL (and `clusterNodes`)
 * are seeds of a Redis Cluster and the client follows the cluster's slots.
 */
export function createRedisClient(options: RedisConnectionOptions, log?: Logger): RedisClient {
  const opts = withDefaults(REDIS_CONNECTION_DEFAULTS, options);
  if (opts.url) validateRedisUrl(opts.url);
  const client: RedisClient = opts.cluster ? createClusterClient(opts) : createNodeClient(opts);
  let lastLogged = 0;
  client.on('error', (err: unknown) => {
    // Reconnect attempts raise one error each; log at most one a second.
    const now = Date.now();
    if (now - lastLogged < 1000) return;
    lastLogged = now;
    log?.warn(
      { err: err instanceof Error ? err.message : String(err), redis: describeRedis(opts) },
      'redis connection error',
    );
  });
  return client;
}

/** Connected and able to take commands now (on a cluster: every master's connection). */
export function isReady(client: RedisClient): boolean {
  if (!isCluster(client)) return client.isReady;
  return (
    client.isOpen && client.masters.length > 0 && client.masters.every((m) => m.client?.isReady === true)
  );
}

/**
 * Connect without waiting, for services that must start while Redis is down (commands meanwhile queue
 * on one server, and fail on a cluster, whose client refuses commands before its first discovery). A
 * cluster whose first discovery fails is tried again with backoff until it succeeds or `signal` aborts;
 * one server reconnects by itself. Failures are logged once per attempt. Resolves at the first
 * successful connect (never rejects): a cluster user may wait on it, bounded, before taking requests.
 */
export function connectInBackground(client: RedisClient, log: Logger, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const attempt = (n: number): void => {
      client.connect().then(
        () => resolve(),
        (err: unknown) => {
          log.error({ err: err instanceof Error ? err.message : String(err) }, 'redis connect failed');
          if (!isCluster(client) || signal?.aborted) return;
          const retry = setTimeout(
            () => {
              if (!signal?.aborted && !client.isOpen) attempt(n + 1);
            },
            backoffDelay({ baseMs: 200, maxMs: 5000, jitter: 0.5 }, n),
          );
          retry.unref();
        },
      );
    };
    attempt(1);
  });
}

/** PING the server (on a cluster: every master). Resolves when all answered. */
export async function pingRedis(client: RedisClient): Promise<void> {
  await Promise.all((await masterClients(client)).map((n) => n.ping()));
}

/** The server itself, or a connection to every master of a cluster (for per-node state: functions, scripts). */
export async function masterClients(client: RedisClient): Promise<RedisNodeClient[]> {
  if (!isCluster(client)) return [client];
  return Promise.all(client.masters.map((m) => client.nodeClient(m)));
}

/** Create and connect; a server that is down at start is retried by the reconnect strategy. */
export async function connectRedis(opts: RedisConnectionOptions, log?: Logger): Promise<RedisClient> {
  const client = createRedisClient(opts, log);
  await client.connect();
  return client;
}

/**
 * Close a client: QUIT when connected (pending replies drain, for at most `graceMs` ms), destroy
 * otherwise. Idempotent.
 */
export async function closeRedis(client: RedisClient, graceMs = 2000): Promise<void> {
  if (!client.isOpen) return;
  const destroy = (): void => {
    try {
      if (client.isOpen) client.destroy();
    } catch {
      // already closed
    }
  };
  if (!(isCluster(client) || client.isReady)) return destroy();
  // A graceful close waits for the replies of pending commands: a server that just died never sends
  // them, so after `graceMs` the connection is dropped instead.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      destroy();
      resolve();
    }, graceMs);
  });
  try {
    const closing = client.close();
    closing.catch(() => undefined); // rejected when destroyed while waiting: already handled
    await Promise.race([closing, late]);
  } catch {
    destroy();
  } finally {
    clearTimeout(timer);
  }
}
