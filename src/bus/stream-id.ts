import { InvalidStreamIdError } from './errors.js';

/** A parsed Redis stream entry ID `<ms>-<seq>`; both parts fit in 64 bits, so they are bigints. */
export interface StreamId {
  readonly ms: bigint;
  readonly seq: bigint;
}

/** The largest part of an ID: Redis keeps both `<ms>` and `<seq>` as unsigned 64-bit integers. */
export const STREAM_ID_PART_MAX = 2n ** 64n - 1n;

/** What a refused ID was expected to be, for error messages. */
export const STREAM_ID_EXPECTED = 'expected a stream entry ID <ms>-<seq>, each part 0..18446744073709551615';

const ID_RE = /^(\d{1,20})-(\d{1,20})$/;

/** The ID, or null when it is malformed or a part is beyond `STREAM_ID_PART_MAX` (Redis refuses those). */
function tryParse(id: string): StreamId | null {
  const m = ID_RE.exec(id);
  if (!m?.[1] || !m[2]) return null;
  const ms = BigInt(m[1]);
  const seq = BigInt(m[2]);
  return ms <= STREAM_ID_PART_MAX && seq <= STREAM_ID_PART_MAX ? { ms, seq } : null;
}

export function parseStreamId(id: string): StreamId {
  const parsed = tryParse(id);
  if (!parsed) throw new InvalidStreamIdError(id);
  return parsed;
}

/** A full `<ms>-<seq>` ID that Redis accepts: every route and relay message taking an ID checks this. */
export function isStreamId(id: string): boolean {
  return tryParse(id) !== null;
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function compareStreamIds(a: string, b: string): number {
  const x = parseStreamId(a);
  const y = parseStreamId(b);
  if (x.ms !== y.ms) return x.ms < y.ms ? -1 : 1;
  if (x.seq !== y.seq) return x.seq < y.seq ? -1 : 1;
  return 0;
}

/** The deterministic ID of an entry keyed by a millisecond timestamp (`<epoch_ms>-0`, as candle streams use it: docs/contracts.md). */
export function idFromEpochMs(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new InvalidStreamIdError(String(ms));
  return `${ms}-0`;
}

/** The millisecond part of an ID, as a number (safe for any realistic wall-clock time). */
export function epochMsOfId(id: string): number {
  return Number(parseStreamId(id).ms);
}
