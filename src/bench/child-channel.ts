/**
 * A typed message channel between a bench's coordinator and a child process it forks, over Node's
 * child_process IPC. The benches keep load and measurement in children so that none of them shares an
 * event loop with the code under test; this is the coordinator's side (`ChildChannel`: fork, `post`,
 * `next(type, timeoutMs)`, kill) and the child's (`sendToParent`).
 *
 * Messages are discriminated unions on `type`; each bench declares its own two unions and passes them
 * as the type parameters. A child reports a failure with `{ type: 'failed', error }` (`ChildFailed`),
 * which makes every later `next()` throw instead of waiting out its timeout.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { BenchFailedError } from './errors.js';

/** What every message has: the tag `next()` waits for. */
export interface Tagged {
  readonly type: string;
}

/** A child's report that it failed; its `error` becomes the channel's `failure`. */
export interface ChildFailed {
  readonly type: 'failed';
  readonly error: string;
}

export interface ChildChannelOptions<FromChild extends Tagged = Tagged> {
  /** Absolute path of the script the child runs (a .ts file works: the child gets our `execArgv`, so tsx). */
  readonly script: string;
  /** Its argv after the script; default none. */
  readonly args?: readonly string[];
  /** Used in errors: `'raw probe'`, `'publisher child'`. */
  readonly name: string;
  /**
   * Start the child in its own process group; default false. True keeps a terminal's Ctrl+C (sent to
   * the foreground group) away from it, so the coordinator alone decides how it stops.
   */
  readonly detached?: boolean;
  /** Node flags of the child; default ours (`process.execArgv`, so a .ts script runs through tsx too). */
  readonly execArgv?: readonly string[];
  /** The child's stdout; default `inherit`. `ignore` when ours carries a report (the CLI's JSON). */
  readonly stdout?: 'inherit' | 'ignore';
  /** IPC serialization; default `json`. `advanced` carries typed arrays (latency samples) as they are. */
  readonly serialization?: 'json' | 'advanced';
  /**
   * Checks each message, which crosses a process boundary: null makes the channel fail ("sent an
   * unknown message"). Default: messages are taken as typed.
   */
  readonly parse?: (raw: unknown) => FromChild | null;
}

function failureOf(m: Tagged): string | undefined {
  if (m.type !== 'failed' || !('error' in m)) return undefined;
  return typeof m.error === 'string' ? m.error : String(m.error);
}

/**
 * The coordinator's handle on one child. `ToChild` is what the coordinator sends, `FromChild` what the
 * child sends (include `ChildFailed` in it if the child reports failures).
 */
export class ChildChannel<ToChild extends Tagged, FromChild extends Tagged> {
  readonly proc: ChildProcess;
  readonly name: string;
  /** Why the child is of no more use: its `failed` message, or a non-zero exit / a signal. */
  failure: string | undefined;
  private readonly inbox: FromChild[] = [];
  private waiters: (() => void)[] = [];

  constructor(o: ChildChannelOptions<FromChild>) {
    this.name = o.name;
    this.proc = fork(o.script, [...(o.args ?? [])], {
      execArgv: [...(o.execArgv ?? process.execArgv)],
      stdio: ['ignore', o.stdout ?? 'inherit', 'inherit', 'ipc'],
      detached: o.detached ?? false,
      serialization: o.serialization ?? 'json',
    });
    const parse = o.parse;
    this.proc.on('message', (raw: unknown) => {
      const m = parse ? parse(raw) : (raw as FromChild);
      if (m === null) {
        this.failure ??= 'sent an unknown message';
        this.wake();
        return;
      }
      const failed = failureOf(m);
      if (failed !== undefined) this.failure ??= failed;
      this.inbox.push(m);
      this.wake();
    });
    this.proc.on('exit', (code, signal) => {
      if (code !== 0) this.failure ??= `${this.name} exited with ${code ?? signal ?? 'unknown'}`;
      this.wake();
    });
    this.proc.on('disconnect', () => this.wake());
    // A fork that could not start (or a failed send): without a listener it would crash this process.
    this.proc.on('error', (err) => {
      this.failure ??= err.message;
      this.wake();
    });
  }

  /** The child's pid, -1 if the fork failed. */
  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** True once the child has exited (by itself or by a signal). */
  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /** Send a message; dropped when the channel is already closed (the child exited or disconnected). */
  post(m: ToChild): void {
    if (this.proc.connected) this.proc.send(m);
  }

  /**
   * The oldest unclaimed message of `type` (others stay queued for their own `next`). Throws with the
   * child's failure, when it exited without sending one, or after `timeoutMs` (ms).
   */
  async next<T extends FromChild['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<FromChild, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Extract<FromChild, { type: T }>;
      if (this.failure) throw new BenchFailedError(`${this.name}: ${this.failure}`);
      // Messages already sent arrive before the channel's disconnect, which may come after the exit.
      if (this.exited && !this.proc.connected)
        throw new BenchFailedError(`${this.name} exited before sending '${type}'`);
      const left = deadline - Date.now();
      if (left <= 0) throw new BenchFailedError(`${this.name}: no '${type}' within ${timeoutMs} ms`);
      // Woken by a message, the exit or the disconnect; the timer is a fallback and bounds the wait.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Drop queued messages of `type`: replies that came after their request had timed out are stale. */
  discard(type: FromChild['type']): void {
    for (let i = this.inbox.length - 1; i >= 0; i--)
      if (this.inbox[i]?.type === type) this.inbox.splice(i, 1);
  }

  /** Wait for the child's exit, SIGKILL it after `graceMs` (ms). */
  async exit(graceMs: number): Promise<void> {
    if (this.exited) return;
    const timer = setTimeout(() => this.kill(), graceMs);
    await new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    clearTimeout(timer);
  }

  /** SIGKILL, unless it already exited. */
  kill(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/**
 * Child side: send `m` to the coordinator and resolve once it is written, so a child can send its last
 * message and then disconnect or exit without losing it. Resolves at once when there is no IPC channel
 * (or it is closed already).
 */
export function sendToParent(m: Tagged): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) resolve();
    else process.send(m, undefined, {}, () => resolve());
  });
}
