/** The plain-text notice of a strategy event (short, stable, no Markdown). */
import type { NotifyEvent } from './event.js';

/** The Bot API's limit for a text message, characters. */
export const TELEGRAM_TEXT_MAX = 4096;

const ERROR_TEXT_MAX = 500;
const FIELD_MAX = 120;

/**
 * The plain-text notice of `event` (short, stable, no Markdown), at most 4096 characters, e.g.
 * `TRADE CLOSE | strategy=MA cross | strategy_id=s1 | run_id=r1 | instrument=binance:spot:BTCUSDT |
 * side=long | price=43100.5 | pnl=+12.3 (+1.2%)`.
 */
export function formatNotice(event: NotifyEvent): string {
  const parts: string[] = [event.type.replace('_', ' ').toUpperCase()];
  const add = (name: string, value: string | number | undefined, max = FIELD_MAX): void => {
    const v = clean(value, max);
    if (v !== '') parts.push(`${name}=${v}`);
  };
  add('strategy', event.strategyName);
  add('strategy_id', event.strategyId);
  add('run_id', event.runId);
  add('instrument', event.instrumentKey);
  add('timeframe', event.timeframe);
  if (event.type === 'signal') add('signal', event.signal);
  if (event.type !== 'failed') {
    add('side', event.side);
    add('price', event.price);
    add('qty', event.quantity);
  }
  if (event.type === 'trade_close' && event.pnl !== undefined) {
    const pct = event.pnlPct !== undefined ? ` (${signed(event.pnlPct)}%)` : '';
    add('pnl', `${signed(event.pnl)}${pct}`);
  }
  if (event.type === 'failed') add('error', event.error ?? 'unknown error', ERROR_TEXT_MAX);
  const text = parts.join(' | ');
  return text.length <= TELEGRAM_TEXT_MAX ? text : `${text.slice(0, TELEGRAM_TEXT_MAX - 1)}…`;
}

/** The fields of a notice's log lines (never the text's free-form parts). */
export function noticeFields(event: NotifyEvent, chatId: number): Record<string, string | number> {
  return { chatId, userId: event.userId, type: event.type, strategyId: event.strategyId, runId: event.runId };
}

function clean(value: string | number | undefined, max: number): string {
  if (value === undefined) return '';
  const s = (typeof value === 'number' ? String(value) : value).replace(/\s+/g, ' ').trim();
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function signed(v: string | number): string {
  const s = String(v).trim();
  return s !== '' && !s.startsWith('-') && !s.startsWith('+') && Number(s) > 0 ? `+${s}` : s;
}
