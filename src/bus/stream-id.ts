import { InvalidStreamIdError } from './errors.js';

/** A parsed Redis stream entry ID `<ms>-<seq>`; both parts fit in 64 bits, so they are bigints. */
export interface StreamId {
  readonly ms: bigint;
  readonly seq: bigint;
}

const ID_RE = /^(\d{1,20})-(\d{1,20})$/;

export function parseStreamId(id: string): StreamId {
  const m = ID_RE.exec(id);
  if (!m?.[1] || !m[2]) throw new InvalidStreamIdError(id);
  return { ms: BigInt(m[1]), seq: BigInt(m[2]) };
}

export function isStreamId(id: string): boolean {
  return ID_RE.test(id);
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
