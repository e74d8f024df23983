/**
 * Builds the sources the feed runs from the validated `market_data` section: one per entry of
 * `sourcePlan` (the simulated source, the replay source, or one venue's from `venues.ts`).
 */
import { ConfigError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import {
  sourcePlan,
  type MarketDataConfig,
  type PlannedInstrument,
  type PlannedSource,
} from '../config/market-data.js';
import { progressBar, type ProgressHandle } from './sources/replay/progress.js';
import { createReplaySource } from './sources/replay/source.js';
import { createSimulatedSource } from './sources/simulated.js';
import type { MarketSource, SourceEvent } from './types.js';
import { VENUES, venueSourceOptions, type VenueSourceTuning } from './venues.js';

export interface BuiltSources {
  /** One per planned source, in plan order; their names (`md.status.<name>`) differ. */
  readonly sources: readonly MarketSource[];
  /** Stop anything the sources drew on the terminal (the replay progress bar). */
  readonly dispose: () => void;
}

/**
 * @param tuning source options beyond the config for every venue source (a test's market clock and
 *   timings); none in production
 */
export function createSources(
  md: MarketDataConfig,
  log: Logger,
  tuning: VenueSourceTuning = {},
): BuiltSources {
  const disposers: (() => void)[] = [];
  const sources = sourcePlan(md).map((p) => build(md, p, log, tuning, disposers));
  return { sources, dispose: () => disposers.forEach((d) => d()) };
}

function build(
  md: MarketDataConfig,
  p: PlannedSource,
  log: Logger,
  tuning: VenueSourceTuning,
  disposers: (() => void)[],
): MarketSource {
  switch (p.kind) {
    case 'simulated':
      return createSimulatedSource({
        instruments: p.instruments.map((i) => ({ instrumentKey: i.key, marketId: i.marketId })),
        seed: md.sources.simulated.seed,
        speed: md.sources.simulated.speed,
        tickIntervalMs: md.sources.simulated.tick_interval_ms,
        maxTicksPerSecond: md.sources.simulated.max_ticks_per_second,
      });
    case 'replay': {
      const file = md.sources.replay.file;
      if (!file)
        throw new ConfigError(
          'market_data.sources.replay.file',
          'required for the replay source (or pass --replay FILE)',
        );
      const only = p.instruments.length === 1 ? p.instruments[0] : undefined;
      const bar: ProgressHandle = progressBar(file);
      disposers.push(() => bar.stop());
      return createReplaySource({
        file,
        speed: md.sources.replay.speed,
        onProgress: bar,
        instrumentKey: only?.key,
        marketId: only?.marketId,
      });
    }
    default: {
      const venue = p.kind;
      let source: MarketSource;
      try {
        source = VENUES[venue].createSource(md, venueSourceOptions(md, p.instruments, log, tuning));
      } catch (err) {
        throw err instanceof ConfigError ? inConfigTerms(err, p.instruments) : err;
      }
      return namingConfigKeys(source, p.instruments);
    }
  }
}

/** `...instruments[n]` as the venue's source counts them (its own list). */
const LOCAL_INDEX = /instruments\[(\d+)\]$/;

/** A venue source's error about its n-th instrument, renamed to that instrument's config key. */
function inConfigTerms(err: ConfigError, instruments: readonly PlannedInstrument[]): ConfigError {
  const n = LOCAL_INDEX.exec(err.key)?.[1];
  const inst = n === undefined ? undefined : instruments[Number(n)];
  if (!inst) return err;
  return new ConfigError(inst.configKey, err.message.slice(`config ${err.key}: `.length), { cause: err });
}

/**
 * The source with its `rejected` notices naming the instrument's key in the whole config: the venue's
 * source sees only its own instruments, so its index is not the config's.
 */
function namingConfigKeys(source: MarketSource, instruments: readonly PlannedInstrument[]): MarketSource {
  const configKeys = new Map(instruments.map((i) => [i.key, i.configKey]));
  return {
    name: source.name,
    get instruments() {
      return source.instruments;
    },
    events: (signal) => renamed(source.events(signal), configKeys),
  };
}

async function* renamed(
  events: AsyncIterable<SourceEvent>,
  configKeys: ReadonlyMap<string, string>,
): AsyncIterable<SourceEvent> {
  for await (const ev of events)
    yield ev.kind === 'rejected'
      ? { ...ev, configKey: configKeys.get(ev.instrumentKey) ?? ev.configKey }
      : ev;
}
