/**
 * A real local Redis Cluster for tests: `masters` redis-server processes with `replicasPerMaster`
 * replicas each (cluster-enabled, on free ports), joined by `redis-cli --cluster create`. It can fail
 * over a master (SIGKILL, its replica is promoted) and kill or restart the whole cluster, which
 * reforms from its nodes.conf files.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import type { RedisConnectionOptions } from '../../src/bus/connection.js';
import { findExecutable, RedisServer } from '../../src/bus/redis-server.js';

const run = promisify(execFile);

export interface LocalClusterOptions {
  /** Default 3. */
  readonly masters?: number;
  /** Default 1. */
  readonly replicasPerMaster?: number;
  /** Default `none`. */
  readonly persistence?: 'aof' | 'none';
  /** `cluster-node-timeout`, ms: how soon a dead master is failed over. Default 1000. */
  readonly nodeTimeoutMs?: number;
  readonly extraArgs?: readonly string[];
}

interface NodeState {
  readonly port: number;
  readonly role: 'master' | 'slave';
  readonly slots: number;
  readonly failed: boolean;
}

export class LocalRedisCluster {
  private constructor(
    readonly nodes: readonly RedisServer[],
    private readonly replicasPerMaster: number,
  ) {}

  static async start(opts: LocalClusterOptions = {}): Promise<LocalRedisCluster> {
    if (!findExecutable('redis-cli'))
      throw new Error('redis-cli not found: install redis-tools (npm test installs it)');
    const count = (opts.masters ?? 3) * (1 + (opts.replicasPerMaster ?? 1));
    const nodes = await Promise.all(
      Array.from({ length: count }, () =>
        RedisServer.start({
          persistence: opts.persistence ?? 'none',
          extraArgs: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            String(opts.nodeTimeoutMs ?? 1000),
            // Replicas of a dead master take over at once, whatever their replication lag.
            '--repl-diskless-sync-delay',
            '0',
            '--cluster-replica-validity-factor',
            '0',
            ...(opts.extraArgs ?? []),
          ],
        }),
      ),
    );
    const cluster = new LocalRedisCluster(nodes, opts.replicasPerMaster ?? 1);
    try {
      await run('redis-cli', [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(opts.replicasPerMaster ?? 1),
        '--cluster-yes',
      ]);
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.dispose();
      throw err;
    }
    return cluster;
  }

  /** The first node's port. */
  get port(): number {
    return this.nodes[0]?.port ?? 0;
  }

  /** The first node's URL (a seed; the client discovers the rest). */
  get url(): string {
    return this.nodes[0]?.url ?? '';
  }

  /** Connection options for marketbus clients. */
  get options(): RedisConnectionOptions {
    return { url: this.url, cluster: true, clusterNodes: this.nodes.slice(1).map((n) => n.url) };
  }

  /** The nodes serving slots now. */
  async masters(): Promise<RedisServer[]> {
    const states = await this.states();
    return this.nodes.filter((n) =>
      states.some((s) => s.port === n.port && s.role === 'master' && s.slots > 0),
    );
  }

  /**
   * SIGKILL a master serving slots (the `index`th of them) and wait until its replica serves them.
   * Returns the killed node (restart it with `node.restart()`; it rejoins as a replica).
   */
  async failOverMaster(index = 0): Promise<RedisServer> {
    const masters = await this.masters();
    const victim = masters[index % masters.length];
    if (!victim) throw new Error('no master to kill');
    await victim.kill();
    await this.waitHealthy(20_000, victim.port);
    return victim;
  }

  /** Kill every node (the whole cluster is down). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill(signal)));
  }

  /** Start every node again on its port and directory; wait until the cluster serves all slots. */
  async restart(): Promise<void> {
    await this.kill();
    await Promise.all(this.nodes.map((n) => n.restart()));
    await this.waitHealthy(30_000);
  }

  async dispose(): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => n.dispose()));
  }

  /** Every running node says cluster_state:ok, and the masters they agree on serve all 16384 slots. */
  async waitHealthy(timeoutMs = 20_000, deadPort?: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const states = await this.states();
        const live = this.nodes.filter((n) => n.running);
        const infos = await Promise.all(live.map((n) => this.ask(n.port, ['CLUSTER', 'INFO'])));
        const allOk = infos.every((i) => i.includes('cluster_state:ok'));
        const served = states
          .filter((s) => s.role === 'master' && !s.failed && s.port !== deadPort)
          .reduce((n, s) => n + s.slots, 0);
        // Replicas in sync, so a failover loses nothing written before it.
        const masters = states.filter((s) => s.role === 'master' && !s.failed && s.port !== deadPort);
        const repl = await Promise.all(masters.map((m) => this.ask(m.port, ['INFO', 'replication'])));
        const synced = repl.filter((r) => /slave\d+:.*state=online/.test(r)).length;
        const wantSynced = this.replicasPerMaster > 0 && deadPort === undefined ? masters.length : 0;
        if (allOk && served === 16384 && synced >= wantSynced) return;
        last = `replicas online under ${synced}/${wantSynced} masters; state ok on ${infos.filter((i) => i.includes('cluster_state:ok')).length}/${live.length}, slots served ${served}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`cluster not healthy after ${timeoutMs} ms: ${last}`);
  }

  /** CLUSTER NODES as seen by the first running node. */
  private async states(): Promise<NodeState[]> {
    const live = this.nodes.find((n) => n.running);
    if (!live) throw new Error('no node running');
    const text = await this.ask(live.port, ['CLUSTER', 'NODES']);
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((line) => {
        const f = line.split(' ');
        const port = Number((f[1] ?? '').split('@')[0]?.split(':')[1]);
        const flags = f[2] ?? '';
        const slots = f.slice(8).reduce((n, r) => {
          if (r.startsWith('[')) return n; // a slot being migrated
          const [a, b] = r.split('-').map(Number);
          return n + (b === undefined ? 1 : (b ?? 0) - (a ?? 0) + 1);
        }, 0);
        return {
          port,
          role: flags.includes('master') ? 'master' : 'slave',
          slots,
          failed: flags.includes('fail') && !flags.includes('fail?') ? true : flags.includes('fail?'),
        } satisfies NodeState;
      });
  }

  private async ask(port: number, argv: string[]): Promise<string> {
    const c = createClient({
      socket: { host: '127.0.0.1', port, connectTimeout: 1000, reconnectStrategy: false },
    });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const reply: unknown = await c.sendCommand(argv);
      if (typeof reply !== 'string') throw new Error(`${argv.join(' ')}: expected a text reply`);
      return reply;
    } finally {
      c.destroy();
    }
  }
}
