/** The coordinator's handle on one probe process (`probe.ts`): fork, IPC requests with timeouts, kill. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, FinalStats, ParentMessage, ProbeConfig, WindowStats } from './probe.js';

const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url));

export class ProbeChild {
  readonly proc: ChildProcess;
  private readonly inbox: ChildMessage[] = [];
  private wake: (() => void) | undefined;
  failure: string | undefined;

  constructor(
    readonly role: ProbeConfig['role'],
    config: ProbeConfig,
  ) {
    // Same loader as ours (tsx), its own process group (a terminal Ctrl+C reaches only the coordinator).
    this.proc = fork(PROBE, [role], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
    });
    this.proc.on('message', (m: ChildMessage) => {
      if (m.type === 'failed') this.failure ??= m.error;
      this.inbox.push(m);
      this.wake?.();
    });
    this.proc.on('exit', (code, signal) => {
      if (code !== 0) this.failure ??= `${role} probe exited with ${code ?? signal ?? 'unknown'}`;
      this.wake?.();
    });
    this.post({ type: 'start', config });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  post(m: ParentMessage): void {
    if (this.proc.connected) this.proc.send(m);
  }

  /** The next message of `type`; throws on the probe's failure or after `timeoutMs`. */
  async next<T extends ChildMessage['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<ChildMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Extract<ChildMessage, { type: T }>;
      if (this.failure) throw new Error(`${this.role} probe: ${this.failure}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.role} probe: no '${type}' within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  async window(timeoutMs: number): Promise<WindowStats | null> {
    // A reply that came after an earlier timeout is stale: drop it.
    for (let i = this.inbox.length - 1; i >= 0; i--)
      if (this.inbox[i]?.type === 'window') this.inbox.splice(i, 1);
    this.post({ type: 'window' });
    try {
      return (await this.next('window', timeoutMs)).stats;
    } catch {
      return null;
    }
  }

  async finish(timeoutMs: number): Promise<FinalStats> {
    this.post({ type: 'finish' });
    return (await this.next('final', timeoutMs)).stats;
  }

  /** Wait for the exit (after `finish`), SIGKILL after `graceMs`. */
  async exit(graceMs: number): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const timer = setTimeout(() => this.kill(), graceMs);
    await new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    clearTimeout(timer);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}
