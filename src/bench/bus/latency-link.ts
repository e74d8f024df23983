/**
 * The bench's end of the IPC channel to one latency worker (`latency-worker.ts`): a `ChildChannel`
 * with advanced serialization (the samples travel as a Float64Array) and every message checked, since
 * it crosses a process boundary.
 */
import { fileURLToPath } from 'node:url';
import { ChildChannel } from '../child-channel.js';
import type { LatencyWorkerConfig, ParentMessage, WorkerMessage } from './latency-worker.js';
import { epochNow } from './timing.js';
import { BenchFailedError } from '../errors.js';

type ResultMessage = Extract<WorkerMessage, { type: 'result' }>;

export type LatencyWorker = ChildChannel<ParentMessage, WorkerMessage>;

/**
 * How to start latency-worker: from TypeScript sources (this module is a .ts file, run through tsx)
 * the worker needs the tsx loader too; compiled, it is plain JavaScript next to this file.
 */
function workerCommand(): { file: string; execArgv: string[] } {
  const fromSources = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(
    new URL(fromSources ? './latency-worker.ts' : './latency-worker.js', import.meta.url),
  );
  if (!fromSources) return { file, execArgv: [] };
  let loader = 'tsx';
  try {
    loader = import.meta.resolve('tsx'); // absolute, so the worker does not depend on the cwd
  } catch {
    // fall back to resolving 'tsx' from the cwd
  }
  return { file, execArgv: ['--import', loader] };
}

/** Start a worker and wait (at most 30 s) until its groups exist and its read loop runs. */
export async function spawnLatencyWorker(cfg: LatencyWorkerConfig): Promise<LatencyWorker> {
  const { file, execArgv } = workerCommand();
  const worker: LatencyWorker = new ChildChannel<ParentMessage, WorkerMessage>({
    script: file,
    args: [JSON.stringify(cfg)],
    name: 'latency worker',
    execArgv,
    // stdout is ignored: the parent's stdout carries the CLI's JSON. stderr shows worker crashes.
    stdout: 'ignore',
    serialization: 'advanced',
    parse: parseWorkerMessage,
  });
  try {
    await worker.next('ready', 30_000);
  } catch (err) {
    worker.kill();
    throw err;
  }
  return worker;
}

/** Worker clock minus ours, ms, from the IPC round trip with the smallest RTT of a few. */
export async function clockOffset(worker: LatencyWorker): Promise<number> {
  let bestRtt = Number.POSITIVE_INFINITY;
  let offset = 0;
  for (let seq = 0; seq < 20; seq++) {
    const t1 = epochNow();
    worker.post({ type: 'clock', seq });
    const reply = await worker.next('clock', 5000);
    const t2 = epochNow();
    if (reply.seq !== seq) throw new BenchFailedError(`latency worker answered clock ${reply.seq} to ${seq}`);
    if (t2 - t1 < bestRtt) {
      bestRtt = t2 - t1;
      offset = reply.now - (t1 + t2) / 2;
    }
  }
  return offset;
}

/** Tell the worker how many entries to wait for; its samples of those sent at or after `measureFrom`. */
export async function finishLatencyWorker(
  worker: LatencyWorker,
  expected: number,
  measureFrom: number,
): Promise<ResultMessage> {
  worker.post({ type: 'finish', expected, measureFrom, timeoutMs: 30_000 });
  return worker.next('result', 60_000);
}

/** Check a message from the worker: it crosses a process boundary, so it is data, not a trusted type. */
function parseWorkerMessage(v: unknown): WorkerMessage | null {
  if (typeof v !== 'object' || v === null) return null;
  const m = v as Record<string, unknown>;
  const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  switch (m['type']) {
    case 'ready':
      return { type: 'ready' };
    case 'clock':
      return isNum(m['seq']) && isNum(m['now']) ? { type: 'clock', seq: m['seq'], now: m['now'] } : null;
    case 'failed':
      return { type: 'failed', error: String(m['error']) };
    case 'result':
      return m['samples'] instanceof Float64Array &&
        isNum(m['received']) &&
        isNum(m['invalid']) &&
        isNum(m['errors'])
        ? {
            type: 'result',
            samples: m['samples'],
            received: m['received'],
            invalid: m['invalid'],
            errors: m['errors'],
          }
        : null;
    default:
      return null;
  }
}
