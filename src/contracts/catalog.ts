/**
 * The stream catalog: every stream name in marketbus is built here, from validated parts, and every
 * name can be read back into its catalog entry (kind, retention, ID mode). Nothing else concatenates
 * stream names. The names are a public contract (DESIGN.md): other languages read these streams.
 */
import { hostname } from 'node:os';
import { InvalidKeyError } from '../util/errors.js';

/** `<exchange>:<market_type>:<SYMBOL>`, e.g. `binance:spot:BTCUSDT`. */
export const INSTRUMENT_KEY_RE = /^[a-z0-9_]+:[a-z0-9_]+:[A-Z0-9._-]+$/;
export const INSTRUMENT_KEY_MAX = 100;
/** Any stream can have dead letters, catalog or not, as long as its name can sit inside a hash tag. */
const DLQ_SOURCE_RE = /^[^{}\s]{1,300}$/;
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
const USER_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const TIMEFRAMES = ['1m', '5m'] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

/** How a stream's old entries are dropped: by approximate length (MAXLEN ~) or by age (MINID ~). */
export type Retention =
  | { readonly kind: 'maxlen'; readonly maxLen: number }
  | { readonly kind: 'maxage'; readonly maxAgeMs: number };

/**
 * `deterministic`: IDs are derived from the data (candles: `<ts_open ms>-0`), so a replay with an
 * automatic ID would break the stream's order. `auto`: Redis assigns IDs.
 */
export type IdMode = 'deterministic' | 'auto';

export type StreamKind =
  | 'candles'
  | 'prices'
  | 'feed-status'
  | 'strategy-events'
  | 'strategy-metrics'
  | 'service-commands'
  | 'service-results'
  | 'service-status'
  | 'dead-letters';

export interface CatalogEntry {
  readonly kind: StreamKind;
  readonly name: string;
  readonly retention: Retention;
  readonly idMode: IdMode;
  /** The variable parts, e.g. `{ timeframe: '1m', instrument: 'binance:spot:BTCUSDT' }`. */
  readonly parts: Readonly<Record<string, string>>;
}

const DAY_MS = 86_400_000;

/** Default retention of each kind; a deployment may override them (see `withRetention`). */
export const DEFAULT_RETENTION: Readonly<Record<StreamKind, Retention>> = {
  candles: { kind: 'maxlen', maxLen: 7 * 1440 }, // 7 days of 1m candles (seed 002)
  prices: { kind: 'maxage', maxAgeMs: DAY_MS },
  'feed-status': { kind: 'maxlen', maxLen: 1000 },
  'strategy-events': { kind: 'maxage', maxAgeMs: 30 * DAY_MS },
  'strategy-metrics': { kind: 'maxage', maxAgeMs: 7 * DAY_MS },
  'service-commands': { kind: 'maxage', maxAgeMs: DAY_MS },
  'service-results': { kind: 'maxage', maxAgeMs: DAY_MS },
  'service-status': { kind: 'maxlen', maxLen: 1000 },
  'dead-letters': { kind: 'maxlen', maxLen: 100_000 },
};

export function validateInstrumentKey(key: string): string {
  if (key.length > INSTRUMENT_KEY_MAX || !INSTRUMENT_KEY_RE.test(key)) {
    throw new InvalidKeyError(
      'instrument key',
      key,
      `expected <exchange>:<market_type>:<SYMBOL> matching ${INSTRUMENT_KEY_RE.source}, at most ${INSTRUMENT_KEY_MAX} chars`,
    );
  }
  return key;
}

export function isInstrumentKey(key: string): boolean {
  return key.length <= INSTRUMENT_KEY_MAX && INSTRUMENT_KEY_RE.test(key);
}

export function validateTimeframe(tf: string): Timeframe {
  if (!(TIMEFRAMES as readonly string[]).includes(tf)) {
    throw new InvalidKeyError('timeframe', tf, `expected one of ${TIMEFRAMES.join(', ')}`);
  }
  return tf as Timeframe;
}

function validateName(part: string, v: string): string {
  if (!NAME_RE.test(v)) throw new InvalidKeyError(part, v, `expected ${NAME_RE.source}`);
  return v;
}

function validateUserId(v: string): string {
  if (!USER_ID_RE.test(v)) throw new InvalidKeyError('user id', v, `expected ${USER_ID_RE.source}`);
  return v;
}

function entry(kind: StreamKind, name: string, parts: Record<string, string>): CatalogEntry {
  return {
    kind,
    name,
    parts,
    retention: DEFAULT_RETENTION[kind],
    idMode: kind === 'candles' ? 'deterministic' : 'auto',
  };
}

/** Stream names by kind. Each returns the name; `describeStream` gives back the full entry. */
export const streams = {
  /** `md.candles.<tf>.<instrument_key>` (seed 002). */
  candles: (tf: string, instrumentKey: string): string =>
    `md.candles.${validateTimeframe(tf)}.${validateInstrumentKey(instrumentKey)}`,
  /** `md.prices.<instrument_key>` (seed 003). */
  prices: (instrumentKey: string): string => `md.prices.${validateInstrumentKey(instrumentKey)}`,
  /** `md.status.<source>` (seed 003). */
  feedStatus: (source: string): string => `md.status.${validateName('source', source)}`,
  /** `strategy.events.v1.user.<user_id>` (seed 004). */
  strategyEvents: (userId: string): string => `strategy.events.v1.user.${validateUserId(userId)}`,
  /** `strategy.metrics.v1.user.<user_id>` (seed 004). */
  strategyMetrics: (userId: string): string => `strategy.metrics.v1.user.${validateUserId(userId)}`,
  /** `mgmt:<service>:commands` (seed 001). */
  serviceCommands: (service: string): string => `mgmt:${validateName('service', service)}:commands`,
  /** `<service>:mgmt:results` (seed 001). */
  serviceResults: (service: string): string => `${validateName('service', service)}:mgmt:results`,
  /** `<service>:status` (seed 001). */
  serviceStatus: (service: string): string => `${validateName('service', service)}:status`,
  /**
   * `dlq:{<stream>}`: the dead letters of one stream. The braces are a Redis Cluster hash tag over the
   * whole source name, so a dead letter and the ack of its source entry share a slot and go in one
   * MULTI.
   */
  deadLetters: (stream: string): string => {
    if (!DLQ_SOURCE_RE.test(stream) || stream.startsWith('dlq:')) {
      throw new InvalidKeyError(
        'stream',
        stream,
        'a dead-letter source must be a stream name without braces or spaces',
      );
    }
    return `dlq:{${stream}}`;
  },
} as const;

/** Keys that are not streams but belong to one (hash-tagged to the stream's slot). */
export const keys = {
  /** `cp:{<stream>}:<group>`: the last processed open time of a candle subscription. */
  subscriptionCheckpoint: (group: string, stream: string): string => {
    if (!DLQ_SOURCE_RE.test(stream) || !DLQ_SOURCE_RE.test(group))
      throw new InvalidKeyError('stream or group', `${stream} ${group}`, 'no braces or spaces');
    return `cp:{${stream}}:${group}`;
  },
} as const;

/** Consumer group names (seed 002 conventions). */
export const groups = {
  strategy: (name: string): string => `strategy.${validateName('strategy name', name)}`,
  service: (service: string): string => `${validateName('service', service)}.workers`,
};

/** The live runner's consumer group on candle streams (`strategy.<name>`). */
export const RUNNER_GROUP = groups.strategy('live_runner');

/** The BullMQ queue of backtest jobs (under BullMQ's default prefix `bull`). */
export const BACKTEST_QUEUE = 'backtests';

/** The default consumer name: `<hostname>-<pid>` (seed 002). */
export function defaultConsumerName(): string {
  return `${hostname()}-${process.pid}`;
}

const PARSERS: readonly { re: RegExp; make: (m: RegExpExecArray, name: string) => CatalogEntry | null }[] = [
  {
    re: /^md\.candles\.([0-9a-z]+)\.(.+)$/,
    make: (m, n) =>
      (TIMEFRAMES as readonly string[]).includes(m[1] ?? '') && isInstrumentKey(m[2] ?? '')
        ? entry('candles', n, { timeframe: m[1] ?? '', instrument: m[2] ?? '' })
        : null,
  },
  {
    re: /^md\.prices\.(.+)$/,
    make: (m, n) => (isInstrumentKey(m[1] ?? '') ? entry('prices', n, { instrument: m[1] ?? '' }) : null),
  },
  {
    re: /^md\.status\.([a-z][a-z0-9_-]{0,63})$/,
    make: (m, n) => entry('feed-status', n, { source: m[1] ?? '' }),
  },
  {
    re: /^strategy\.events\.v1\.user\.([A-Za-z0-9_-]{1,64})$/,
    make: (m, n) => entry('strategy-events', n, { user: m[1] ?? '' }),
  },
  {
    re: /^strategy\.metrics\.v1\.user\.([A-Za-z0-9_-]{1,64})$/,
    make: (m, n) => entry('strategy-metrics', n, { user: m[1] ?? '' }),
  },
  {
    re: /^mgmt:([a-z][a-z0-9_-]{0,63}):commands$/,
    make: (m, n) => entry('service-commands', n, { service: m[1] ?? '' }),
  },
  {
    re: /^([a-z][a-z0-9_-]{0,63}):mgmt:results$/,
    make: (m, n) => entry('service-results', n, { service: m[1] ?? '' }),
  },
  {
    re: /^([a-z][a-z0-9_-]{0,63}):status$/,
    make: (m, n) => entry('service-status', n, { service: m[1] ?? '' }),
  },
  {
    re: /^dlq:\{([^{}\s]{1,300})\}$/,
    make: (m, n) => entry('dead-letters', n, { stream: m[1] ?? '' }),
  },
];

/** The catalog entry of a stream name, or null when the name is not one marketbus makes. */
export function describeStream(name: string): CatalogEntry | null {
  for (const p of PARSERS) {
    const m = p.re.exec(name);
    if (m) return p.make(m, name);
  }
  return null;
}

/** SCAN patterns that cover every catalog stream (for inspection and cleanup). */
export const CATALOG_PATTERNS = [
  'md.*',
  'strategy.*',
  'mgmt:*',
  '*:mgmt:results',
  '*:status',
  'dlq:*',
] as const;

/** Split `<exchange>:<market_type>:<SYMBOL>`. The key must already be validated. */
export function splitInstrumentKey(key: string): { exchange: string; marketType: string; symbol: string } {
  const [exchange = '', marketType = '', ...rest] = key.split(':');
  return { exchange, marketType, symbol: rest.join(':') };
}
