/**
 * Verification of a Telegram Login Widget payload, exactly as Telegram documents it
 * (https://core.telegram.org/widgets/login#checking-authorization), in its Python form:
 *
 *     data_check_string = "\n".join(f"{k}={v}" for k, v in sorted(fields without hash))
 *     secret_key        = SHA256(bot_token)
 *     hash              = hex(HMAC_SHA256(secret_key, data_check_string))
 *
 * Every received field except `hash` takes part (numbers in their JSON text form), keys sorted by code
 * unit as Python's `sorted` does. The hash is compared in constant time, then `auth_date` must be at
 * most `maxAgeS` old and not more than `skewS` in the future. Only a payload that passes is trusted,
 * and only once (./login-once.ts).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { MarketbusError, type ErrorCode } from '../../util/errors.js';

export type TelegramLoginProblem = 'malformed' | 'bad_hash' | 'stale' | 'future' | 'replayed';

const CODES = {
  malformed: 'TELEGRAM_MALFORMED',
  bad_hash: 'TELEGRAM_BAD_HASH',
  stale: 'TELEGRAM_STALE',
  future: 'TELEGRAM_FUTURE',
  replayed: 'TELEGRAM_REPLAYED',
} as const satisfies Record<TelegramLoginProblem, ErrorCode>;

/** A login payload that is not trusted; the code is `TELEGRAM_<PROBLEM>`. */
export class TelegramLoginError extends MarketbusError {
  constructor(
    readonly problem: TelegramLoginProblem,
    message: string,
  ) {
    super(CODES[problem], message);
  }
}

export interface TelegramIdentity {
  readonly telegramId: number;
  readonly username: string | null;
  readonly firstName: string | null;
  readonly lastName: string | null;
  readonly photoUrl: string | null;
  /** Epoch seconds. */
  readonly authDate: number;
}

export interface VerifyOptions {
  /** Oldest accepted `auth_date`, seconds before now. */
  readonly maxAgeS: number;
  /** Largest accepted `auth_date` in the future (clock skew), seconds. Default 60. */
  readonly skewS?: number;
  /** Now, epoch seconds (tests). */
  readonly nowS?: number;
}

const MAX_FIELDS = 32;
const KEY_RE = /^[a-z0-9_]{1,64}$/;
const MAX_VALUE = 2048;
const HASH_RE = /^[0-9a-fA-F]{64}$/;

/** The payload as `key -> text` (JSON numbers as their text); throws `malformed` for anything else. */
export function telegramLoginFields(input: unknown): Record<string, string> {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new TelegramLoginError('malformed', 'expected a JSON object of Telegram login fields');
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > MAX_FIELDS) throw new TelegramLoginError('malformed', 'too many fields');
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (!KEY_RE.test(k))
      throw new TelegramLoginError('malformed', `unexpected field name ${JSON.stringify(k)}`);
    let text: string;
    if (typeof v === 'string') text = v;
    else if (typeof v === 'number' && Number.isFinite(v)) text = String(v);
    else throw new TelegramLoginError('malformed', `field ${k}: expected a string or a number`);
    if (text.length > MAX_VALUE) throw new TelegramLoginError('malformed', `field ${k}: too long`);
    out[k] = text;
  }
  return out;
}

/** `key=value` lines of every field but `hash`, sorted by key, joined with `\n`. */
export function dataCheckString(fields: Readonly<Record<string, string>>): string {
  return Object.keys(fields)
    .filter((k) => k !== 'hash')
    .sort()
    .map((k) => `${k}=${fields[k] ?? ''}`)
    .join('\n');
}

/** The hex HMAC Telegram puts in `hash` (also what tests and the smoke scenario compute). */
export function telegramLoginHash(fields: Readonly<Record<string, string>>, botToken: string): string {
  const secret = createHash('sha256').update(botToken, 'utf8').digest();
  return createHmac('sha256', secret).update(dataCheckString(fields), 'utf8').digest('hex');
}

/** Verify a Login Widget payload; returns the identity or throws TelegramLoginError. */
export function verifyTelegramLogin(input: unknown, botToken: string, o: VerifyOptions): TelegramIdentity {
  const fields = telegramLoginFields(input);
  const hash = fields['hash'];
  if (hash === undefined || !HASH_RE.test(hash))
    throw new TelegramLoginError('malformed', 'hash: expected 64 hex digits');
  if (fields['id'] === undefined || fields['auth_date'] === undefined)
    throw new TelegramLoginError('malformed', 'id and auth_date are required');
  const expected = Buffer.from(telegramLoginHash(fields, botToken), 'hex');
  const given = Buffer.from(hash.toLowerCase(), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw new TelegramLoginError('bad_hash', 'the login data is not signed by this bot');
  // Signed: now the values can be read.
  if (
    !/^\d{1,16}$/.test(fields['id']) ||
    !Number.isSafeInteger(Number(fields['id'])) ||
    Number(fields['id']) <= 0
  )
    throw new TelegramLoginError('malformed', 'id: expected a positive integer');
  if (!/^\d{1,12}$/.test(fields['auth_date']))
    throw new TelegramLoginError('malformed', 'auth_date: expected epoch seconds');
  const authDate = Number(fields['auth_date']);
  const now = o.nowS ?? Math.floor(Date.now() / 1000);
  if (now - authDate > o.maxAgeS)
    throw new TelegramLoginError('stale', `auth_date is older than ${o.maxAgeS} s: sign in again`);
  if (authDate - now > (o.skewS ?? 60)) throw new TelegramLoginError('future', 'auth_date is in the future');
  return {
    telegramId: Number(fields['id']),
    username: fields['username'] ?? null,
    firstName: fields['first_name'] ?? null,
    lastName: fields['last_name'] ?? null,
    photoUrl: fields['photo_url'] ?? null,
    authDate,
  };
}
