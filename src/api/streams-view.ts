/**
 * `/api/v1/streams` without a scan per call and without showing one user another's streams: one bus
 * health report (src/bus/bus-health.ts) serves every caller for `streamsCacheMs`, concurrent callers
 * sharing the scan in progress; each user then sees the market data streams and their own
 * (`streamOwner` of the catalog), with consumer names removed (they name hosts and processes). The
 * admin sees the report whole.
 */
import { busHealth, type BusHealthReport, type HealthFlag, type StreamReport } from '../bus/bus-health.js';
import type { RedisClient } from '../bus/connection.js';
import { CATALOG_POLICY, streamOwner } from '../contracts/catalog.js';

export class StreamsView {
  private cached: { readonly at: number; readonly report: Promise<BusHealthReport> } | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly cacheMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The report `userId` may see; the whole one for an admin. */
  async forUser(userId: string, admin: boolean): Promise<BusHealthReport> {
    const report = await this.report();
    if (admin) return report;
    const streams = report.streams.filter((s) => visible(s.stream, userId)).map(withoutConsumers);
    return { at: report.at, streams, unhealthy: streams.filter((s) => s.flags.length > 0).length };
  }

  /** The cached report, or a new scan when it is older than `cacheMs` (a failed scan is not kept). */
  private report(): Promise<BusHealthReport> {
    const t = this.now();
    if (this.cached && t - this.cached.at < this.cacheMs) return this.cached.report;
    const report = busHealth(this.redis, { policy: CATALOG_POLICY });
    const entry = { at: t, report };
    this.cached = entry;
    report.catch(() => {
      if (this.cached === entry) this.cached = undefined;
    });
    return report;
  }
}

function visible(stream: string, userId: string): boolean {
  const owner = streamOwner(stream);
  return owner === 'shared' || (owner !== null && owner.user === userId);
}

function withoutConsumers(s: StreamReport): StreamReport {
  return {
    ...s,
    groups: s.groups.map((g) => ({ ...g, consumerList: [] })),
    flags: s.flags.map((f): HealthFlag => (f.kind === 'consumer-idle' ? { ...f, consumer: '' } : f)),
  };
}
