/**
 * Service heartbeats on `<service>:status` (docs/contracts.md §11.4): every instance of a service adds a
 * flat entry (all strings, like the feed's status) when it starts, every `intervalMs`, and when it stops:
 *
 *   schema_version "1", service, instance, state (running | stopped), started_at, time (ISO-8601),
 *   interval_ms, handled, rejected, failed, duplicates, expired (command counts since start),
 *   commands (comma-separated types it accepts), plus service-specific fields (e.g. queue counts).
 *
 * `readServiceStatus` turns the recent entries into one line per instance, alive or not.
 */
import { streams, CATALOG_POLICY } from '../contracts/catalog.js';
import type { RedisClient } from '../bus/connection.js';
import { StreamProducer } from '../bus/producer.js';
import { parseEntries } from '../bus/replies.js';
import { withDefaults, type WithDefaults } from '../util/defaults.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { sendCommand } from '../bus/raw-command.js';

export const STATUS_SCHEMA_VERSION = '1';

export interface CommandCounts {
  handled: number;
  rejected: number;
  failed: number;
  duplicates: number;
  expired: number;
}

export interface HeartbeatOptions {
  /** Service name: the beats go to `<service>:status`. */
  readonly service: string;
  /** Instance name within the service (its consumer name). */
  readonly instance: string;
  /** Command types the instance accepts (the `commands` field). */
  readonly commands: readonly string[];
  /** Command counts since start, read at each beat. */
  readonly counts: () => Readonly<CommandCounts>;
  /**
   * Extra flat fields (e.g. job queue counts); a failure is logged and the beat goes out without them.
   * @defaultValue none
   */
  readonly extra?: (() => Promise<Readonly<Record<string, string>>>) | undefined;
  /**
   * Time between beats, ms (sent as `interval_ms`; readers count an instance alive for three of them).
   * @defaultValue 5000
   */
  readonly intervalMs?: number | undefined;
  /**
   * Where failed beats are reported.
   * @defaultValue none
   */
  readonly log?: Logger | undefined;
}

/** The defaults of {@link HeartbeatOptions}, applied by the `Heartbeat` constructor. */
export const HEARTBEAT_DEFAULTS = Object.freeze({
  intervalMs: 5000,
} satisfies Partial<HeartbeatOptions>);

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly producer: StreamProducer;
  private readonly startedAt = new Date().toISOString();
  readonly intervalMs: number;
  private readonly o: WithDefaults<HeartbeatOptions, typeof HEARTBEAT_DEFAULTS>;

  constructor(
    private readonly redis: RedisClient,
    options: HeartbeatOptions,
  ) {
    this.o = withDefaults(HEARTBEAT_DEFAULTS, options);
    this.producer = new StreamProducer(redis, { policy: CATALOG_POLICY });
    this.intervalMs = this.o.intervalMs;
  }

  start(): void {
    if (this.timer) return;
    void this.beat('running');
    this.timer = setInterval(() => void this.beat('running'), this.intervalMs);
    this.timer.unref();
  }

  /** Stop beating and say so. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.beat('stopped');
  }

  private async beat(state: 'running' | 'stopped'): Promise<void> {
    try {
      let extra: Readonly<Record<string, string>> = {};
      if (this.o.extra) {
        extra = await this.o.extra().catch((err: unknown) => {
          this.o.log?.debug({ err: errorMessage(err) }, 'status fields failed');
          return {};
        });
      }
      const c = this.o.counts();
      await this.producer.publish(streams.serviceStatus(this.o.service), {
        ...extra,
        schema_version: STATUS_SCHEMA_VERSION,
        service: this.o.service,
        instance: this.o.instance,
        state,
        started_at: this.startedAt,
        time: new Date().toISOString(),
        interval_ms: String(this.intervalMs),
        handled: String(c.handled),
        rejected: String(c.rejected),
        failed: String(c.failed),
        duplicates: String(c.duplicates),
        expired: String(c.expired),
        commands: this.o.commands.join(','),
      });
    } catch (err) {
      this.o.log?.warn({ err: errorMessage(err), service: this.o.service }, 'status heartbeat failed');
    }
  }
}

export interface InstanceStatus {
  readonly instance: string;
  readonly state: string;
  /** Time of the last heartbeat, epoch ms. */
  readonly time: number;
  /** Running and heard from within three intervals. */
  readonly alive: boolean;
  readonly fields: Readonly<Record<string, string>>;
}

export interface ServiceStatusOptions {
  /**
   * The time `alive` is judged at, ms since epoch.
   * @defaultValue the time of the call
   */
  readonly now?: number;
  /**
   * Newest entries of `<service>:status` read, entries.
   * @defaultValue 500
   */
  readonly scan?: number;
}

/** The defaults of {@link ServiceStatusOptions}, applied by `readServiceStatus`. */
export const SERVICE_STATUS_DEFAULTS = Object.freeze({
  scan: 500,
} satisfies Partial<ServiceStatusOptions>);

/** The latest heartbeat of each instance of a service among its last `scan` entries, newest first. */
export async function readServiceStatus(
  redis: RedisClient,
  service: string,
  options: ServiceStatusOptions = {},
): Promise<InstanceStatus[]> {
  const opts = withDefaults(SERVICE_STATUS_DEFAULTS, options);
  const now = opts.now ?? Date.now();
  const entries = parseEntries(
    await sendCommand(redis, [
      'XREVRANGE',
      streams.serviceStatus(service),
      '+',
      '-',
      'COUNT',
      String(opts.scan),
    ]),
  ).entries;
  const out = new Map<string, InstanceStatus>();
  for (const e of entries) {
    const f = e.fields;
    const instance = f['instance'] ?? '';
    if (instance === '' || out.has(instance)) continue;
    const time = Date.parse(f['time'] ?? '');
    const interval = Number(f['interval_ms'] ?? HEARTBEAT_DEFAULTS.intervalMs);
    out.set(instance, {
      instance,
      state: f['state'] ?? '',
      time,
      alive: f['state'] === 'running' && Number.isFinite(time) && now - time <= 3 * interval,
      fields: f,
    });
  }
  return [...out.values()];
}
