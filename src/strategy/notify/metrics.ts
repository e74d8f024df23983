/**
 * The notifier's three counters (their names are part of the public metrics):
 * - `strategy_telegram_notify_total{mode,type}`: notices delivered (`telegram`: the Bot API said ok;
 *   `log_only`: the notice was logged).
 * - `strategy_telegram_notify_errors_total{reason}`: `too_many_requests` (429), `client_error` (other
 *   4xx), `server_error` (5xx), `timeout`, `network` (no HTTP answer, or one that is not the Bot API's
 *   JSON), `chat_lookup` (`chatFor` threw, timed out or returned something that is not a chat id).
 * - `strategy_telegram_notify_skipped_total{reason}`: `no_confirmed_chat`, `rate_limited` (the per-chat
 *   limit), `retry_after` (the chat is paused after a 429), `debounced`, `queue_full`, `closed`.
 */
import { Counter, type Registry } from 'prom-client';
import { NOTIFIED_TYPES, type NotifyMode } from './event.js';

export type ErrorReason =
  'too_many_requests' | 'client_error' | 'server_error' | 'timeout' | 'network' | 'chat_lookup';
export type SkipReason =
  'no_confirmed_chat' | 'rate_limited' | 'retry_after' | 'debounced' | 'queue_full' | 'closed';

const ERROR_REASONS: readonly ErrorReason[] = [
  'too_many_requests',
  'client_error',
  'server_error',
  'timeout',
  'network',
  'chat_lookup',
];
const SKIP_REASONS: readonly SkipReason[] = [
  'no_confirmed_chat',
  'rate_limited',
  'retry_after',
  'debounced',
  'queue_full',
  'closed',
];

export interface NotifyMetrics {
  readonly sent: Counter<'mode' | 'type'>;
  readonly errors: Counter<'reason'>;
  readonly skipped: Counter<'reason'>;
}

/** The counters in `registry` (shared when another notifier registered them already), all at 0. */
export function notifyMetrics(registry: Registry, mode: NotifyMode): NotifyMetrics {
  const m: NotifyMetrics = {
    sent: counter(
      registry,
      'strategy_telegram_notify_total',
      'Strategy notices delivered (telegram: sent; log_only: logged)',
      ['mode', 'type'],
    ),
    errors: counter(
      registry,
      'strategy_telegram_notify_errors_total',
      'Strategy notices that failed (Bot API error, timeout, network, chat lookup)',
      ['reason'],
    ),
    skipped: counter(
      registry,
      'strategy_telegram_notify_skipped_total',
      'Strategy notices not sent by policy (no confirmed chat, rate limit, retry_after, debounce, queue full, closed)',
      ['reason'],
    ),
  };
  // Every series exists from the start (at 0), so dashboards and rate() see them before the first event.
  for (const type of NOTIFIED_TYPES) m.sent.inc({ mode, type }, 0);
  for (const reason of ERROR_REASONS) m.errors.inc({ reason }, 0);
  for (const reason of SKIP_REASONS) m.skipped.inc({ reason }, 0);
  return m;
}

function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}
