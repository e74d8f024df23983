/** Clocks of the bench: a stopwatch of wall-clock and CPU time, a poll with a deadline, epoch ms. */
import { performance } from 'node:perf_hooks';
import { TimeoutError } from '../../util/errors.js';
import { sleep } from '../../util/sleep.js';

/** Wall-clock and CPU time of one timed section, ms. */
export interface Measurement {
  readonly ms: number;
  readonly cpuMs: number;
}

/** Starts timing now; the returned function ends it. */
export function stopwatch(): () => Measurement {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  return () => {
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return { ms, cpuMs: (c.user + c.system) / 1000 };
  };
}

export async function pollUntil(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new TimeoutError(what, timeoutMs);
    await sleep(1);
  }
}

/** Epoch ms with sub-ms precision, on the same clock as the latency worker's. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
