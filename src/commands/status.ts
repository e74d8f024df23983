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
  readonly service: string;
  readonly instance: string;
  readonly commands: readonly string[];
  readonly counts: () => Readonly<CommandCounts>;
  /** Extra flat fields (e.g. job queue counts); a failure is logged and the beat goes out without them. */
  readonly extra?: (() => Promise<Readonly<Record<string, string>>>) | undefined;
  /** Default 5000. */
  readonly intervalMs?: number | undefined;
  readonly log?: Logger | undefined;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly producer: StreamProducer;
  private readonly startedAt = new Date().toISOString();
  readonly intervalMs: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly o: HeartbeatOptions,
  ) {
    this.producer = new StreamProducer(redis, { policy: CATALOG_POLICY });
    this.intervalMs = o.intervalMs ?? 5000;
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

/** The latest heartbeat of each instance of a service among its last `scan` entries, newest first. */
export async function readServiceStatus(
  redis: RedisClient,
  service: string,
  opts: { now?: number; scan?: number } = {},
): Promise<InstanceStatus[]> {
  const now = opts.now ?? Date.now();
  const entries = parseEntries(
    await sendCommand(redis, [
      'XREVRANGE',
      streams.serviceStatus(service),
      '+',
      '-',
      'COUNT',
      String(opts.scan ?? 500),
    ]),
  ).entries;
  const out = new Map<string, InstanceStatus>();
  for (const e of entries) {
    const f = e.fields;
    const instance = f['instance'] ?? '';
    if (instance === '' || out.has(instance)) continue;
    const time = Date.parse(f['time'] ?? '');
    const interval = Number(f['interval_ms'] ?? 5000);
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
