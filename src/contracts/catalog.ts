/**
 * The stream catalog: every stream name in marketbus is built here, from validated parts, and every
 * name can be read back into its catalog entry (kind, retention, ID mode). Nothing else concatenates
 * stream names. The names are a public contract (docs/contracts.md): other languages read these streams.
 */
import { InvalidKeyError } from '../util/errors.js';
import { DEAD_LETTER_PATTERN, deadLetterSource, deadLetterStream, fitsHashTag } from '../bus/keys.js';
import {
  DEAD_LETTER_RETENTION,
  type IdMode,
  type Retention,
  type StreamPolicy,
} from '../bus/stream-policy.js';

/** `<exchange>:<market_type>:<SYMBOL>`, e.g. `binance:spot:BTCUSDT`. */
export const INSTRUMENT_KEY_RE = /^[a-z0-9_]+:[a-z0-9_]+:[A-Z0-9._-]+$/;
export const INSTRUMENT_KEY_MAX = 100;
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
const USER_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const TIMEFRAMES = ['1m', '5m'] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

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
  /** The stream's kind; also the `kind` label of the bus health gauges. */
  readonly kind: StreamKind;
  readonly name: string;
  readonly retention: Retention;
  readonly idMode: IdMode;
  /** The variable parts, e.g. `{ timeframe: '1m', instrument: 'binance:spot:BTCUSDT' }`. */
  readonly parts: Readonly<Record<string, string>>;
}

const DAY_MS = 86_400_000;

/** Default retention of each kind; a deployment may override them (see `catalogPolicy`). */
export const DEFAULT_RETENTION: Readonly<Record<StreamKind, Retention>> = {
  candles: { kind: 'maxlen', maxLen: 7 * 1440 }, // 7 days of 1m candles (docs/contracts.md)
  prices: { kind: 'maxage', maxAgeMs: DAY_MS },
  'feed-status': { kind: 'maxlen', maxLen: 1000 },
  'strategy-events': { kind: 'maxage', maxAgeMs: 30 * DAY_MS },
  'strategy-metrics': { kind: 'maxage', maxAgeMs: 7 * DAY_MS },
  'service-commands': { kind: 'maxage', maxAgeMs: DAY_MS },
  'service-results': { kind: 'maxage', maxAgeMs: DAY_MS },
  'service-status': { kind: 'maxlen', maxLen: 1000 },
  'dead-letters': DEAD_LETTER_RETENTION,
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
  /** `md.candles.<tf>.<instrument_key>` (docs/contracts.md). */
  candles: (tf: string, instrumentKey: string): string =>
    `md.candles.${validateTimeframe(tf)}.${validateInstrumentKey(instrumentKey)}`,
  /** `md.prices.<instrument_key>` (docs/contracts.md). */
  prices: (instrumentKey: string): string => `md.prices.${validateInstrumentKey(instrumentKey)}`,
  /** `md.status.<source>` (docs/contracts.md). */
  feedStatus: (source: string): string => `md.status.${validateName('source', source)}`,
  /** `strategy.events.v1.user.<user_id>` (docs/contracts.md). */
  strategyEvents: (userId: string): string => `strategy.events.v1.user.${validateUserId(userId)}`,
  /** `strategy.metrics.v1.user.<user_id>` (docs/contracts.md). */
  strategyMetrics: (userId: string): string => `strategy.metrics.v1.user.${validateUserId(userId)}`,
  /** `mgmt:<service>:commands` (docs/contracts.md). */
  serviceCommands: (service: string): string => `mgmt:${validateName('service', service)}:commands`,
  /** `<service>:mgmt:results` (docs/contracts.md). */
  serviceResults: (service: string): string => `${validateName('service', service)}:mgmt:results`,
  /** `<service>:status` (docs/contracts.md). */
  serviceStatus: (service: string): string => `${validateName('service', service)}:status`,
  /**
   * `dlq:{<stream>}`: the dead letters of one stream (the bus's naming, see `deadLetterStream`). Any
   * stream can have dead letters, catalog or not, as long as its name can sit inside a hash tag.
   */
  deadLetters: (stream: string): string => deadLetterStream(stream),
} as const;

/** Keys that are not streams but belong to one (hash-tagged to the stream's slot). */
export const keys = {
  /** `cp:{<stream>}:<group>`: the last processed open time of a candle subscription. */
  subscriptionCheckpoint: (group: string, stream: string): string => {
    if (!fitsHashTag(stream) || !fitsHashTag(group))
      throw new InvalidKeyError('stream or group', `${stream} ${group}`, 'no braces or spaces');
    return `cp:{${stream}}:${group}`;
  },
} as const;

/** Consumer group names (docs/contracts.md). */
export const groups = {
  strategy: (name: string): string => `strategy.${validateName('strategy name', name)}`,
  service: (service: string): string => `${validateName('service', service)}.workers`,
};

/** The live runner's consumer group on candle streams (`strategy.<name>`). */
export const RUNNER_GROUP = groups.strategy('live_runner');

/** The BullMQ queue of backtest jobs (under BullMQ's default prefix `bull`). */
export const BACKTEST_QUEUE = 'backtests';

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
];

/** The catalog entry of a stream name, or null when the name is not one marketbus makes. */
export function describeStream(name: string): CatalogEntry | null {
  const source = deadLetterSource(name);
  if (source !== null) return entry('dead-letters', name, { stream: source });
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
  DEAD_LETTER_PATTERN,
] as const;

/** Per-user kinds: their streams share one metrics `stream` label, so series do not grow with users. */
const PER_USER_KINDS: ReadonlySet<StreamKind> = new Set(['strategy-events', 'strategy-metrics']);

/** Market data: written by the feed for everyone, the same for every user. */
const SHARED_KINDS: ReadonlySet<StreamKind> = new Set(['candles', 'prices', 'feed-status']);

/**
 * Whose a stream is: `shared` for market data (every user reads it), `{ user }` for a user's own
 * streams, a dead-letter stream being its source's; null for the services' own streams (commands,
 * results, status) and names outside the catalog.
 */
export function streamOwner(name: string): 'shared' | { readonly user: string } | null {
  const e = describeStream(name);
  if (!e) return null;
  if (e.kind === 'dead-letters') return streamOwner(e.parts['stream'] ?? '');
  if (SHARED_KINDS.has(e.kind)) return 'shared';
  const user = e.parts['user'];
  return PER_USER_KINDS.has(e.kind) && user !== undefined ? { user } : null;
}

/** The catalog as the bus's policy: `describe` gives catalog entries. */
export interface CatalogPolicy extends StreamPolicy {
  describe(stream: string): CatalogEntry | null;
  metricStream(stream: string): string;
}

/**
 * The catalog as a StreamPolicy for the bus: each catalog stream's retention (the kind's override, else
 * DEFAULT_RETENTION) and ID mode (`deterministic` for candles), the catalog's SCAN patterns, catalog
 * entries as descriptions, and per-user streams under one metrics label
 * (`strategy.events.v1.user.*`). Streams outside the catalog: no retention, automatic IDs.
 */
export function catalogPolicy(retention: Partial<Record<StreamKind, Retention>> = {}): CatalogPolicy {
  return {
    patterns: CATALOG_PATTERNS,
    retention: (stream) => {
      const e = describeStream(stream);
      return e ? (retention[e.kind] ?? e.retention) : null;
    },
    idMode: (stream): IdMode => describeStream(stream)?.idMode ?? 'auto',
    describe: describeStream,
    metricStream: (stream) => {
      const kind = describeStream(stream)?.kind;
      return kind !== undefined && PER_USER_KINDS.has(kind) ? stream.replace(/[^.]+$/, '*') : stream;
    },
  };
}

/** The catalog policy with the default retention of every kind (no configured overrides). */
export const CATALOG_POLICY: CatalogPolicy = catalogPolicy();

/** Split `<exchange>:<market_type>:<SYMBOL>`. The key must already be validated. */
export function splitInstrumentKey(key: string): { exchange: string; marketType: string; symbol: string } {
  const [exchange = '', marketType = '', ...rest] = key.split(':');
  return { exchange, marketType, symbol: rest.join(':') };
}
