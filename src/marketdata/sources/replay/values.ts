/**
 * One field's value of a row: numbers (JSON numbers or numeric strings) and times (ISO-8601, UTC unless
 * it names a zone, or epoch numbers in s, ms, µs or ns told by magnitude, between 2000-01-01 and
 * 2100-01-01). A value that cannot be used is a RowError: the row is reported as invalid and skipped.
 */
import { MarketbusError } from '../../../util/errors.js';
import { WIRE_NAME, type Field, type Getter } from './fields.js';

const MIN_TS = Date.UTC(2000, 0, 1);
const MAX_TS = Date.UTC(2100, 0, 1);

/** A row of a replayed file that cannot be used (reported as `invalid`, never thrown out of the source). */
export class RowError extends MarketbusError {
  constructor(message: string) {
    super('DECODE_FAILED', message);
  }
}

export function present(v: unknown): boolean {
  return v !== undefined && v !== null && !(typeof v === 'string' && v.trim() === '');
}

export const NUMBER_RE = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

export function num(get: Getter, f: Field): number {
  const v = get(f);
  if (!present(v)) throw new RowError(`${WIRE_NAME[f]}: missing`);
  let n = NaN;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && NUMBER_RE.test(v.trim())) n = Number(v.trim());
  if (!Number.isFinite(n)) throw new RowError(`${WIRE_NAME[f]}: not a number (${short(v)})`);
  return n;
}

export function positive(get: Getter, f: Field): number {
  const n = num(get, f);
  if (n <= 0) throw new RowError(`${WIRE_NAME[f]}: must be > 0 (${n})`);
  return n;
}

export function nonNegative(get: Getter, f: Field): number {
  const n = num(get, f);
  if (n < 0) throw new RowError(`${WIRE_NAME[f]}: must be ≥ 0 (${n})`);
  return n;
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** An epoch number in s, ms, µs or ns (told by magnitude), or an ISO-8601 string → integer epoch ms. */
export function parseTimestamp(v: unknown): number | null {
  let ms: number | null = null;
  if (typeof v === 'string' && ISO_RE.test(v.trim())) {
    let s = v.trim().replace(' ', 'T');
    if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(s)) s += s.includes('T') ? 'Z' : 'T00:00:00Z';
    // Date.parse takes at most milliseconds: cut longer fractions.
    s = s.replace(/(\.\d{3})\d+/, '$1');
    const t = Date.parse(s);
    ms = Number.isNaN(t) ? null : t;
  } else {
    let n = NaN;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string' && NUMBER_RE.test(v.trim())) n = Number(v.trim());
    if (!Number.isFinite(n)) return null;
    for (const perMs of [1e-3, 1, 1e3, 1e6]) {
      if (n >= MIN_TS * perMs && n < MAX_TS * perMs) {
        ms = perMs === 1e-3 ? Math.round(n * 1000) : Math.floor(n / perMs);
        break;
      }
    }
  }
  return ms !== null && ms >= MIN_TS && ms < MAX_TS ? ms : null;
}

export function timestamp(get: Getter, f: Field): number {
  const v = get(f);
  if (!present(v)) throw new RowError(`${WIRE_NAME[f]}: missing`);
  const ms = parseTimestamp(v);
  if (ms === null) throw new RowError(`${WIRE_NAME[f]}: bad timestamp (${short(v)})`);
  return ms;
}

export function short(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}
