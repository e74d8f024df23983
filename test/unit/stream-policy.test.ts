import { describe, expect, it } from 'vitest';
import {
  DEAD_LETTER_PATTERN,
  canHaveDeadLetters,
  deadLetterSource,
  deadLetterStream,
  isDeadLetterStream,
} from '../../src/bus/keys.js';
import {
  DEAD_LETTER_RETENTION,
  DEFAULT_STREAM_POLICY,
  trimOptions,
  type Retention,
} from '../../src/bus/stream-policy.js';
import { defaultConsumerName } from '../../src/bus/consumer.js';
import {
  CATALOG_PATTERNS,
  CATALOG_POLICY,
  DEFAULT_RETENTION,
  catalogPolicy,
  describeStream,
  streams,
} from '../../src/contracts/catalog.js';
import { InvalidKeyError } from '../../src/util/errors.js';

const DAY = 86_400_000;

/** One name per catalog kind, with the retention and ID mode the catalog gave them before the policy. */
const KINDS: readonly [string, string, Retention, 'deterministic' | 'auto'][] = [
  [
    'candles',
    streams.candles('1m', 'binance:spot:BTCUSDT'),
    { kind: 'maxlen', maxLen: 10_080 },
    'deterministic',
  ],
  ['candles', streams.candles('5m', 'sim:fx:XAUUSD'), { kind: 'maxlen', maxLen: 10_080 }, 'deterministic'],
  ['prices', streams.prices('binance:spot:BTCUSDT'), { kind: 'maxage', maxAgeMs: DAY }, 'auto'],
  ['feed-status', streams.feedStatus('binance'), { kind: 'maxlen', maxLen: 1000 }, 'auto'],
  ['strategy-events', streams.strategyEvents('u-1'), { kind: 'maxage', maxAgeMs: 30 * DAY }, 'auto'],
  ['strategy-metrics', streams.strategyMetrics('u-1'), { kind: 'maxage', maxAgeMs: 7 * DAY }, 'auto'],
  ['service-commands', streams.serviceCommands('strategy'), { kind: 'maxage', maxAgeMs: DAY }, 'auto'],
  ['service-results', streams.serviceResults('strategy'), { kind: 'maxage', maxAgeMs: DAY }, 'auto'],
  ['service-status', streams.serviceStatus('strategy'), { kind: 'maxlen', maxLen: 1000 }, 'auto'],
  [
    'dead-letters',
    streams.deadLetters(streams.candles('1m', 'binance:spot:BTCUSDT')),
    { kind: 'maxlen', maxLen: 100_000 },
    'auto',
  ],
];

describe('dead-letter naming (bus)', () => {
  it('names dlq:{<stream>} for any stream that fits a hash tag, and reads the source back', () => {
    expect(deadLetterStream('orders.eu')).toBe('dlq:{orders.eu}');
    expect(deadLetterSource('dlq:{orders.eu}')).toBe('orders.eu');
    expect(isDeadLetterStream('dlq:{orders.eu}')).toBe(true);
    expect(isDeadLetterStream('orders.eu')).toBe(false);
    expect(deadLetterSource('dlq:{a}:x')).toBeNull();
    expect(canHaveDeadLetters('orders.eu')).toBe(true);
    expect(DEAD_LETTER_PATTERN).toBe('dlq:*');
  });

  it.each(['dlq:{x}', 'a{b}', 'with space', '', 'x'.repeat(301)])('refuses the source %j', (s) => {
    expect(canHaveDeadLetters(s)).toBe(false);
    expect(() => deadLetterStream(s)).toThrow(InvalidKeyError);
  });

  it("is the catalog's own dead-letter naming", () => {
    for (const s of ['md.prices.sim:fx:XAUUSD', 'orders.eu', 'dlq:{x}', 'a b']) {
      let bus: unknown;
      let catalog: unknown;
      try {
        bus = deadLetterStream(s);
      } catch (err) {
        bus = (err as InvalidKeyError).code;
      }
      try {
        catalog = streams.deadLetters(s);
      } catch (err) {
        catalog = (err as InvalidKeyError).code;
      }
      expect(catalog).toEqual(bus);
    }
  });
});

describe('default stream policy (no policy given)', () => {
  it('has no retention except for dead letters, automatic IDs, and every stream as pattern', () => {
    expect(DEFAULT_STREAM_POLICY.retention('orders.eu')).toBeNull();
    expect(DEFAULT_STREAM_POLICY.retention(streams.candles('1m', 'binance:spot:BTCUSDT'))).toBeNull();
    expect(DEFAULT_STREAM_POLICY.retention('dlq:{orders.eu}')).toEqual(DEAD_LETTER_RETENTION);
    expect(DEFAULT_STREAM_POLICY.idMode(streams.candles('1m', 'binance:spot:BTCUSDT'))).toBe('auto');
    expect(DEFAULT_STREAM_POLICY.patterns).toEqual(['*']);
    expect('describe' in DEFAULT_STREAM_POLICY).toBe(false);
  });

  it('turns a retention into XADD trim options', () => {
    expect(trimOptions(null, 0)).toBeUndefined();
    expect(trimOptions({ kind: 'maxlen', maxLen: 5 }, 0)).toEqual({
      TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: 5 },
    });
    expect(trimOptions({ kind: 'maxage', maxAgeMs: 1000 }, 5000)).toEqual({
      TRIM: { strategy: 'MINID', strategyModifier: '~', threshold: 4000 },
    });
    expect(trimOptions({ kind: 'maxage', maxAgeMs: 9000 }, 5000)?.TRIM).toMatchObject({ threshold: 0 });
  });

  it('names consumers <hostname>-<pid>', () => {
    expect(defaultConsumerName()).toMatch(new RegExp(`^.+-${process.pid}$`));
  });
});

describe('catalog policy (contracts)', () => {
  it.each(KINDS)(
    'gives %s streams (%s) the retention and ID mode of before',
    (kind, name, retention, idMode) => {
      expect(describeStream(name)?.kind).toBe(kind);
      expect(CATALOG_POLICY.retention(name)).toEqual(retention);
      expect(CATALOG_POLICY.retention(name)).toEqual(describeStream(name)?.retention);
      expect(CATALOG_POLICY.idMode(name)).toBe(idMode);
      expect(CATALOG_POLICY.describe(name)).toEqual(describeStream(name));
    },
  );

  it('applies the configured per-kind overrides and keeps the defaults of the other kinds', () => {
    const p = catalogPolicy({
      'service-status': { kind: 'maxlen', maxLen: 300 },
      candles: { kind: 'maxlen', maxLen: 5 },
    });
    expect(p.retention(streams.serviceStatus('strategy'))).toEqual({ kind: 'maxlen', maxLen: 300 });
    expect(p.retention(streams.candles('1m', 'binance:spot:BTCUSDT'))).toEqual({ kind: 'maxlen', maxLen: 5 });
    expect(p.retention(streams.prices('binance:spot:BTCUSDT'))).toEqual(DEFAULT_RETENTION.prices);
    expect(p.idMode(streams.candles('1m', 'binance:spot:BTCUSDT'))).toBe('deterministic');
  });

  it('leaves streams outside the catalog untrimmed with automatic IDs', () => {
    expect(CATALOG_POLICY.retention('orders.eu')).toBeNull();
    expect(CATALOG_POLICY.idMode('orders.eu')).toBe('auto');
    expect(CATALOG_POLICY.describe('orders.eu')).toBeNull();
  });

  it('scans the catalog patterns and labels per-user streams under one metrics stream', () => {
    expect(CATALOG_POLICY.patterns).toEqual(CATALOG_PATTERNS);
    expect(CATALOG_POLICY.metricStream(streams.strategyEvents('u-1'))).toBe('strategy.events.v1.user.*');
    expect(CATALOG_POLICY.metricStream(streams.strategyMetrics('u-2'))).toBe('strategy.metrics.v1.user.*');
    const candles = streams.candles('1m', 'binance:spot:BTCUSDT');
    expect(CATALOG_POLICY.metricStream(candles)).toBe(candles);
  });
});
