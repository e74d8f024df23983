/** Builds the configured market source from the validated `market_data` section. */
import { ConfigError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { MarketDataConfig } from '../config/market-data.js';
import { createBinanceSource } from './sources/binance/source.js';
import { progressBar, type ProgressHandle } from './sources/replay/progress.js';
import { createReplaySource } from './sources/replay/source.js';
import { createSimulatedSource } from './sources/simulated.js';
import type { MarketSource } from './types.js';

export interface BuiltSource {
  readonly source: MarketSource;
  /** Stop anything the source drew on the terminal (the replay progress bar). */
  readonly dispose: () => void;
}

export function createSource(md: MarketDataConfig, log: Logger): BuiltSource {
  switch (md.source) {
    case 'simulated':
      return {
        source: createSimulatedSource({
          instruments: md.instruments.map((i) => ({
            instrumentKey: i.key,
            marketId: i.market_id,
          })),
          seed: md.sources.simulated.seed,
          speed: md.sources.simulated.speed,
          tickIntervalMs: md.sources.simulated.tick_interval_ms,
          maxTicksPerSecond: md.sources.simulated.max_ticks_per_second,
        }),
        dispose: () => undefined,
      };
    case 'replay': {
      const file = md.sources.replay.file;
      if (!file)
        throw new ConfigError(
          'market_data.sources.replay.file',
          'required for the replay source (or pass --replay FILE)',
        );
      const only = md.instruments.length === 1 ? md.instruments[0] : undefined;
      const bar: ProgressHandle = progressBar(file);
      return {
        source: createReplaySource({
          file,
          speed: md.sources.replay.speed,
          onProgress: bar,
          instrumentKey: only?.key,
          marketId: only?.market_id,
        }),
        dispose: () => bar.stop(),
      };
    }
    case 'binance': {
      const marketIds: Record<string, number> = {};
      for (const i of md.instruments) if (i.market_id !== undefined) marketIds[i.key] = i.market_id;
      const b = md.sources.binance;
      return {
        source: createBinanceSource({
          instruments: md.instruments.map((i) => i.key),
          marketIds,
          wsUrl: b.ws_url,
          restUrl: b.rest_url,
          futuresWsUrl: b.futures_ws_url,
          futuresRestUrl: b.futures_rest_url,
          maxHistoryCallsPerMin: md.max_history_calls_per_min,
          logger: log,
        }),
        dispose: () => undefined,
      };
    }
  }
}
