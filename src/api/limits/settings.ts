/**
 * The API's rate limits, quotas and page sizes, from the environment (read by `apiSettingsFromEnv`).
 * docs/security.md ("Rate limits and quotas") says what each one stops; a value that is not a positive
 * integer is a ConfigError naming its variable.
 *
 * | variable                        | meaning                                                  | default |
 * | ------------------------------- | -------------------------------------------------------- | ------- |
 * | `RATE_LIMIT_LOGIN_PER_MIN`      | sign-in requests per client address per minute          | 10      |
 * | `RATE_LIMIT_WRITES_PER_MIN`     | POST/PUT/PATCH/DELETE per user (or address) per minute   | 120     |
 * | `TRUST_PROXY`                   | addresses of the reverse proxy whose X-Forwarded-For counts | none |
 * | `MAX_STRATEGIES_PER_USER`       | strategies one user may keep                             | 50      |
 * | `MAX_RUNNING_PER_USER`          | strategies of one user running live at once              | 10      |
 * | `MAX_QUEUED_BACKTESTS_PER_USER` | backtests of one user queued or running at once          | 3       |
 * | `MAX_BACKTEST_DAYS`             | longest range one backtest from the API covers, days     | 366     |
 * | `QUOTA_RETRY_AFTER_S`           | `Retry-After` of a quota refusal, seconds                | 60      |
 * | `PAGE_LIMIT_DEFAULT`            | entries of a list page when `limit` is not given         | 50      |
 * | `PAGE_LIMIT_MAX`                | most entries of a list page (a larger `limit` is capped) | 200     |
 * | `EVENTS_SCAN_MAX`               | stream entries one events/metrics read looks at          | 2000    |
 */
import { isIP } from 'node:net';
import { ConfigError } from '../../util/errors.js';

export interface LimitSettings {
  /**
   * Sign-in requests (`/auth/telegram/login`, `/auth/dev`) per client address per minute.
   * @defaultValue 10
   */
  readonly loginPerMin: number;
  /**
   * State-changing requests per signed-in user (per address when anonymous) per minute.
   * @defaultValue 120
   */
  readonly writesPerMin: number;
  /**
   * The reverse proxy's addresses or CIDR ranges (also `loopback`, `linklocal`, `uniquelocal`); only a
   * request from one of them has its X-Forwarded-For read for the client address. Empty = the socket
   * address is the client.
   * @defaultValue none (the socket address is the client)
   */
  readonly trustProxy: readonly string[];
  /**
   * Strategies one user may keep.
   * @defaultValue 50
   */
  readonly maxStrategiesPerUser: number;
  /**
   * Strategies of one user running live at once.
   * @defaultValue 10
   */
  readonly maxRunningPerUser: number;
  /**
   * Backtests of one user queued or running at once.
   * @defaultValue 3
   */
  readonly maxQueuedBacktestsPerUser: number;
  /**
   * Longest range of one backtest asked for through the API, days.
   * @defaultValue 366
   */
  readonly maxBacktestDays: number;
  /**
   * `Retry-After` of a 429 for a quota, seconds (a quota frees when the user stops or removes something).
   * @defaultValue 60
   */
  readonly quotaRetryAfterS: number;
  /**
   * Entries of a list page when the request gives no `limit` (at most `pageLimitMax`).
   * @defaultValue 50
   */
  readonly pageLimitDefault: number;
  /**
   * Most entries of a list page; a larger `limit` is capped to it.
   * @defaultValue 200
   */
  readonly pageLimitMax: number;
  /**
   * Stream entries one `GET /strategies/:id/events` (or `/metrics`) looks at before it answers with what
   * it found and a `next_before` to go on from.
   * @defaultValue 2000
   */
  readonly eventsScanMax: number;
}

/** The defaults of {@link LimitSettings}. */
export const LIMIT_DEFAULTS = Object.freeze({
  loginPerMin: 10,
  writesPerMin: 120,
  maxStrategiesPerUser: 50,
  maxRunningPerUser: 10,
  maxQueuedBacktestsPerUser: 3,
  maxBacktestDays: 366,
  quotaRetryAfterS: 60,
  pageLimitDefault: 50,
  pageLimitMax: 200,
  eventsScanMax: 2000,
} satisfies Omit<LimitSettings, 'trustProxy'>);

const VARIABLES = {
  loginPerMin: 'RATE_LIMIT_LOGIN_PER_MIN',
  writesPerMin: 'RATE_LIMIT_WRITES_PER_MIN',
  maxStrategiesPerUser: 'MAX_STRATEGIES_PER_USER',
  maxRunningPerUser: 'MAX_RUNNING_PER_USER',
  maxQueuedBacktestsPerUser: 'MAX_QUEUED_BACKTESTS_PER_USER',
  maxBacktestDays: 'MAX_BACKTEST_DAYS',
  quotaRetryAfterS: 'QUOTA_RETRY_AFTER_S',
  pageLimitDefault: 'PAGE_LIMIT_DEFAULT',
  pageLimitMax: 'PAGE_LIMIT_MAX',
  eventsScanMax: 'EVENTS_SCAN_MAX',
} as const satisfies Partial<Record<keyof LimitSettings, string>>;

/** The names proxy-addr (Fastify's `trustProxy`) knows besides addresses and ranges. */
const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function proxyEntry(v: string): boolean {
  if (PROXY_NAMES.has(v)) return true;
  const [addr = '', bits, ...rest] = v.split('/');
  const family = isIP(addr);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

/** `TRUST_PROXY`: a comma-separated list; `true`, `*` or a hop count would trust anyone and are refused. */
function trustProxyFromEnv(env: NodeJS.ProcessEnv): readonly string[] {
  const raw = env['TRUST_PROXY']?.trim();
  if (!raw) return [];
  const list = raw.split(',').map((s) => s.trim());
  const bad = list.find((v) => !proxyEntry(v));
  if (bad !== undefined)
    throw new ConfigError(
      'TRUST_PROXY',
      `expected the proxy's addresses or CIDR ranges (or loopback, linklocal, uniquelocal), got ${JSON.stringify(bad)}`,
    );
  return list;
}

/** Read and check the limits; throws ConfigError naming the first bad variable. */
export function limitSettingsFromEnv(env: NodeJS.ProcessEnv): LimitSettings {
  const out: Record<string, unknown> = { ...LIMIT_DEFAULTS, trustProxy: trustProxyFromEnv(env) };
  for (const [field, key] of Object.entries(VARIABLES)) {
    const raw = env[key]?.trim();
    if (!raw) continue;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new ConfigError(key, `expected a positive integer, got ${raw}`);
    out[field] = n;
  }
  return out as unknown as LimitSettings;
}
