import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withDefaults } from '../../src/util/defaults.js';
import { BUS_HEALTH_DEFAULTS } from '../../src/bus/bus-health.js';
import { REDIS_CONNECTION_DEFAULTS } from '../../src/bus/connection.js';
import { CONSUMER_DEFAULTS } from '../../src/bus/consumer.js';
import { DEAD_LETTER_DEFAULTS, REPLAY_DEFAULTS } from '../../src/bus/dead-letter.js';
import { BUS_HEALTH_METRICS_DEFAULTS } from '../../src/bus/health-metrics.js';
import { PRODUCER_DEFAULTS } from '../../src/bus/producer.js';
import { REDIS_SERVER_DEFAULTS } from '../../src/bus/redis-server.js';
import { DEFAULT_STREAM_POLICY } from '../../src/bus/stream-policy.js';
import { TRIMMER_DEFAULTS } from '../../src/bus/trimmer.js';
import { COMMAND_CLIENT_DEFAULTS, REQUEST_DEFAULTS, SEND_DEFAULTS } from '../../src/commands/client.js';
import { SERVE_DEFAULTS } from '../../src/commands/server.js';
import { HEARTBEAT_DEFAULTS, SERVICE_STATUS_DEFAULTS } from '../../src/commands/status.js';
import { RUN_MIGRATIONS_DEFAULTS } from '../../src/sql/migrator.js';
import { POSTGRES_DEFAULTS } from '../../src/sql/postgres.js';
import { silentLogger } from '../../src/util/log.js';
import { BACKTESTER_DEFAULTS } from '../../src/app/backtester.js';
import { START_API_DEFAULTS } from '../../src/app/start-api.js';
import { EMBEDDED_REDIS_DEFAULTS } from '../../src/app/redis-target.js';
import { BACKTEST_RUN_DEFAULTS } from '../../src/backtest/driver.js';
import { BACKTEST_QUEUE_DEFAULTS } from '../../src/backtest/queue.js';
import { BACKTEST_WORKER_DEFAULTS } from '../../src/backtest/worker.js';
import { TELEGRAM_NOTIFIER_DEFAULTS } from '../../src/strategy/notify/notifier.js';
import { RUNNER_DEFAULTS } from '../../src/strategy/runner.js';
import { DEFAULT_LIVE_LIMITS } from '../../src/api/live/client.js';
import { LIVE_HUB_DEFAULTS } from '../../src/api/live/hub.js';
import { AUTH_SETTINGS_DEFAULTS } from '../../src/api/auth/settings.js';
import { SERVER_LIMITS_DEFAULTS } from '../../src/api/server-settings.js';
import { SERVED_INSTRUMENTS_DEFAULTS } from '../../src/api/live/served.js';
import { LIMIT_DEFAULTS } from '../../src/api/limits/settings.js';
import { RATE_COUNTER_DEFAULTS } from '../../src/api/limits/rate-counter.js';
import {
  FEED_PRICE_RETENTION,
  FEED_RETENTION_1M,
  FEED_RETENTION_5M,
  FEED_SERVICE_DEFAULTS,
} from '../../src/marketdata/feed.js';
import { CANDLE_PUBLISHER_DEFAULTS } from '../../src/marketdata/candle-publisher.js';
import { BINANCE_DEFAULTS } from '../../src/marketdata/sources/binance/options.js';
import { HISTORY_LIMITER_DEFAULTS } from '../../src/marketdata/kit/rest-budget.js';
import { KIT_DEFAULTS } from '../../src/marketdata/kit/options.js';
import { REPLAY_SOURCE_DEFAULTS } from '../../src/marketdata/sources/replay/options.js';
import { DEFAULT_SIM_INSTRUMENTS, SIMULATED_DEFAULTS } from '../../src/marketdata/sources/simulated.js';
import { BACKFILL_DEFAULTS } from '../../src/history/backfill.js';
import { CLICKHOUSE_STORE_DEFAULTS } from '../../src/history/clickhouse/store.js';
import { SQL_CANDLE_STORE_DEFAULTS } from '../../src/history/sql/candles.js';
import { CANDLE_SUBSCRIPTION_DEFAULTS } from '../../src/history/subscription.js';
import { HISTORY_WRITER_DEFAULTS } from '../../src/history/writer.js';

describe('withDefaults', () => {
  const defaults = { a: 1, b: 'x', nested: { p: 1, q: 2 } };

  it('keeps a default when the option is missing or undefined', () => {
    const o: { a?: number | undefined; b?: string | undefined } = { a: undefined };
    expect(withDefaults(defaults, o)).toEqual({ a: 1, b: 'x', nested: { p: 1, q: 2 } });
  });

  it('lets defined values override, falsy ones included; null is a value', () => {
    const o: { a?: number; b?: string | null } = { a: 0, b: null };
    expect(withDefaults(defaults, o)).toEqual({ a: 0, b: null, nested: { p: 1, q: 2 } });
    expect(withDefaults({ b: 'x' }, { b: '' })).toEqual({ b: '' });
  });

  it('is shallow: an object option replaces its default whole', () => {
    const o: { nested?: { p?: number; q?: number } } = { nested: { p: 5 } };
    expect(withDefaults(defaults, o).nested).toEqual({ p: 5 });
  });

  it('keeps options without a default and changes neither input', () => {
    const options = { a: 2, extra: 'e' };
    const out = withDefaults({ a: 1 }, options);
    expect(out).toEqual({ a: 2, extra: 'e' });
    expect(options).toEqual({ a: 2, extra: 'e' });
    expect(out).not.toBe(options);
  });
});

/** `@defaultValue` of each field of `interface <name>` in a source file, as written (first line). */
function documentedDefaults(file: string, name: string): Map<string, string> {
  const src = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
  const start = src.indexOf(`export interface ${name}`);
  expect(start, `${name} in ${file}`).toBeGreaterThanOrEqual(0);
  const body = src.slice(start, src.indexOf('\n}', start));
  // Every optional field says what it defaults to (a value, or prose for computed or none).
  for (const m of body.matchAll(/^ {2}readonly (\w+)\?/gm)) {
    const field = m[1] ?? '';
    const doc = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*$/.exec(body.slice(0, m.index))?.[1] ?? '';
    expect(doc, `${name}.${field} documents @defaultValue on a line of its own`).toMatch(
      /\n\s*\* @defaultValue \S/,
    );
  }
  const out = new Map<string, string>();
  for (const m of body.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*readonly (\w+)\??:/g)) {
    const tag = /@defaultValue\s+(.+)/.exec(m[1] ?? '');
    if (tag?.[1] && m[2]) out.set(m[2], tag[1].trim());
  }
  return out;
}

/**
 * What a documented default names: a number, `true`/`false`/`null`, a backquoted string or a known
 * constant.
 */
function parseDocumented(text: string): unknown {
  const named: Record<string, unknown> = {
    DEFAULT_STREAM_POLICY,
    'Date.now': Date.now,
    silentLogger,
    FEED_RETENTION_1M,
    FEED_RETENTION_5M,
    FEED_PRICE_RETENTION,
    DEFAULT_SIM_INSTRUMENTS,
  };
  const code = /^`([^`]+)`/.exec(text)?.[1];
  if (code !== undefined && !/<\w+>/.test(code)) return code in named ? named[code] : code;
  const word = text.split(/\s/)[0] ?? '';
  if (word === 'true' || word === 'false') return word === 'true';
  if (word === 'null') return null;
  if (/^-?[\d_]+(\.\d+)?$/.test(word)) return Number(word.replace(/_/g, ''));
  return text; // prose ("none (not counted)", "every group", `<hostname>-<pid>`): computed or none
}

describe('@defaultValue docs match the DEFAULTS constants', () => {
  const cases: [string, string, Readonly<Record<string, unknown>>][] = [
    ['src/bus/producer.ts', 'ProducerOptions', PRODUCER_DEFAULTS],
    ['src/bus/consumer.ts', 'ConsumerOptions', CONSUMER_DEFAULTS],
    ['src/bus/dead-letter.ts', 'DeadLetterOptions', DEAD_LETTER_DEFAULTS],
    ['src/bus/dead-letter.ts', 'ReplayOptions', { policy: REPLAY_DEFAULTS.policy }],
    ['src/bus/connection.ts', 'RedisConnectionOptions', REDIS_CONNECTION_DEFAULTS],
    ['src/bus/redis-server.ts', 'RedisServerOptions', REDIS_SERVER_DEFAULTS],
    ['src/bus/bus-health.ts', 'BusHealthOptions', BUS_HEALTH_DEFAULTS],
    ['src/bus/health-metrics.ts', 'BusHealthMetricsOptions', BUS_HEALTH_METRICS_DEFAULTS],
    ['src/bus/trimmer.ts', 'TrimmerOptions', TRIMMER_DEFAULTS],
    ['src/commands/server.ts', 'ServeOptions', SERVE_DEFAULTS],
    ['src/commands/status.ts', 'HeartbeatOptions', HEARTBEAT_DEFAULTS],
    ['src/commands/status.ts', 'ServiceStatusOptions', SERVICE_STATUS_DEFAULTS],
    ['src/commands/client.ts', 'SendOptions', SEND_DEFAULTS],
    ['src/commands/client.ts', 'RequestOptions', REQUEST_DEFAULTS],
    ['src/commands/client.ts', 'CommandClientOptions', COMMAND_CLIENT_DEFAULTS],
    ['src/sql/postgres.ts', 'PostgresStoreOptions', POSTGRES_DEFAULTS],
    ['src/sql/migrator.ts', 'RunMigrationsOptions', RUN_MIGRATIONS_DEFAULTS],
    // No constant value to apply: every default is computed or none.
    ['src/bus/health.ts', 'InspectOptions', {}],
    ['src/sql/pglite.ts', 'PgliteStoreOptions', {}],
    ['src/app/backtester.ts', 'BacktesterOptions', BACKTESTER_DEFAULTS],
    ['src/app/start-api.ts', 'StartApiOptions', START_API_DEFAULTS],
    ['src/app/redis-target.ts', 'EmbeddedRedisOptions', EMBEDDED_REDIS_DEFAULTS],
    ['src/backtest/driver.ts', 'BacktestRunOptions', BACKTEST_RUN_DEFAULTS],
    ['src/backtest/queue.ts', 'BacktestQueueOptions', BACKTEST_QUEUE_DEFAULTS],
    ['src/backtest/worker.ts', 'BacktestWorkerOptions', BACKTEST_WORKER_DEFAULTS],
    ['src/strategy/notify/notifier.ts', 'TelegramNotifierOptions', TELEGRAM_NOTIFIER_DEFAULTS],
    ['src/strategy/runner.ts', 'RunnerOptions', RUNNER_DEFAULTS],
    ['src/api/live/client.ts', 'LiveLimits', { ...DEFAULT_LIVE_LIMITS }],
    ['src/api/live/hub.ts', 'LiveHubOptions', LIVE_HUB_DEFAULTS],
    ['src/api/auth/settings.ts', 'AuthSettings', AUTH_SETTINGS_DEFAULTS],
    ['src/api/server-settings.ts', 'ServerLimits', SERVER_LIMITS_DEFAULTS],
    ['src/api/live/served.ts', 'ServedInstrumentsOptions', SERVED_INSTRUMENTS_DEFAULTS],
    ['src/api/limits/settings.ts', 'LimitSettings', LIMIT_DEFAULTS],
    ['src/api/limits/rate-counter.ts', 'RateCounterOptions', RATE_COUNTER_DEFAULTS],
    ['src/marketdata/feed.ts', 'FeedServiceOptions', FEED_SERVICE_DEFAULTS],
    ['src/marketdata/candle-publisher.ts', 'CandlePublisherOptions', CANDLE_PUBLISHER_DEFAULTS],
    ['src/marketdata/sources/binance/options.ts', 'BinanceSourceOptions', BINANCE_DEFAULTS],
    ['src/marketdata/kit/options.ts', 'KitSourceOptions', KIT_DEFAULTS],
    [
      'src/marketdata/kit/rest-budget.ts',
      'HistoryLimiterOptions',
      // sleep and onThrottle are functions documented in prose
      { windowMs: HISTORY_LIMITER_DEFAULTS.windowMs, clock: HISTORY_LIMITER_DEFAULTS.clock },
    ],
    ['src/marketdata/sources/replay/options.ts', 'ReplaySourceOptions', REPLAY_SOURCE_DEFAULTS],
    ['src/marketdata/sources/simulated.ts', 'SimulatedSourceOptions', SIMULATED_DEFAULTS],
    ['src/history/backfill.ts', 'BackfillOptions', BACKFILL_DEFAULTS],
    ['src/history/clickhouse/store.ts', 'ClickHouseStoreOptions', CLICKHOUSE_STORE_DEFAULTS],
    ['src/history/sql/candles.ts', 'SqlCandleStoreOptions', SQL_CANDLE_STORE_DEFAULTS],
    ['src/history/subscription.ts', 'CandleSubscriptionOptions', CANDLE_SUBSCRIPTION_DEFAULTS],
    ['src/history/writer.ts', 'HistoryWriterOptions', HISTORY_WRITER_DEFAULTS],
  ];
  it.each(cases)('%s %s', (file, name, defaults) => {
    const docs = documentedDefaults(file, name);
    for (const [field, value] of Object.entries(defaults)) {
      expect(docs.has(field), `${name}.${field} documents @defaultValue`).toBe(true);
      expect(parseDocumented(docs.get(field) ?? ''), `${name}.${field}`).toBe(value);
    }
    // A documented value (not prose) must be in the constant, so it is applied, not only written down.
    for (const [field, text] of docs) {
      const parsed = parseDocumented(text);
      if (parsed !== text) expect(Object.keys(defaults), `${name}.${field} in DEFAULTS`).toContain(field);
    }
  });
});
