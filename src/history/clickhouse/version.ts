/**
 * Row versions for the ReplacingMergeTree `version` column: "the later write wins". A version is the
 * wall clock in ms times 1000 plus a sequence, strictly increasing within the process (shared by all
 * stores in it), so two inserts from one process never tie even within one millisecond, and writes
 * from different processes are ordered by their clocks. 1000 × Date.now() stays below 2^53 (an exact
 * JS number, and exact in UInt64) until the year 2255.
 */
let last = 0;

export function nextVersion(): number {
  last = Math.max(last + 1, Date.now() * 1000);
  return last;
}
