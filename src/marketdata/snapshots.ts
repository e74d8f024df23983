/**
 * Price snapshots (docs/contracts.md §7): the latest tick of each instrument is kept; every cycle one
 * entry per instrument that ticked since the last cycle goes to `md.prices.<key>`. Latest-only: a
 * snapshot that cannot be published is superseded by the next cycle's, so failures are counted, not
 * retried.
 */
import { streams } from '../contracts/catalog.js';
import type { PublishItem, StreamProducer } from '../bus/producer.js';
import type { Retention } from '../bus/stream-policy.js';
import { priceCodec } from '../contracts/market-data.js';
import type { FeedMetrics } from './feed-metrics.js';
import type { Tick } from '../contracts/candle.js';

export class PriceSnapshots {
  private readonly latest = new Map<string, Tick>();
  private readonly dirty = new Set<string>();

  constructor(
    private readonly producer: StreamProducer | null,
    private readonly metrics: FeedMetrics,
    private readonly retention: Retention,
  ) {}

  onTick(t: Tick): void {
    this.latest.set(t.instrumentKey, t);
    this.dirty.add(t.instrumentKey);
  }

  latestOf(key: string): Tick | undefined {
    return this.latest.get(key);
  }

  /** Publish one cycle; returns the number of snapshots published. */
  async cycle(snapTs: number): Promise<number> {
    if (this.dirty.size === 0 || !this.producer) {
      this.dirty.clear();
      return 0;
    }
    const items: PublishItem[] = [];
    for (const key of this.dirty) {
      const tick = this.latest.get(key);
      if (tick)
        items.push({
          stream: streams.prices(key),
          fields: priceCodec.encode({ tick, snapTs }),
          retention: this.retention,
        });
    }
    this.dirty.clear();
    const outcomes = await this.producer.publishMany(items);
    let ok = 0;
    for (const r of outcomes) {
      if (r.status === 'added') ok++;
      else this.metrics.snapshotErrors.inc();
    }
    this.metrics.snapshotsPublished.inc(ok);
    return ok;
  }
}
