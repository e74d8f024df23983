/** The coordinator's handle on one probe process (`probe.ts`): fork, IPC requests with timeouts, kill. */
import { fileURLToPath } from 'node:url';
import { ChildChannel } from '../../src/bench/child-channel.js';
import type { ChildMessage, FinalStats, ParentMessage, ProbeConfig, WindowStats } from './probe.js';

const PROBE = fileURLToPath(new URL('./probe.ts', import.meta.url));

export class ProbeChild extends ChildChannel<ParentMessage, ChildMessage> {
  constructor(
    readonly role: ProbeConfig['role'],
    config: ProbeConfig,
  ) {
    // Same loader as ours (tsx), its own process group (a terminal Ctrl+C reaches only the coordinator).
    super({ script: PROBE, args: [role], name: `${role} probe`, detached: true });
    this.post({ type: 'start', config });
  }

  /** The probe's stats since its previous window; null when it does not answer within `timeoutMs`. */
  async window(timeoutMs: number): Promise<WindowStats | null> {
    this.discard('window'); // a reply that came after an earlier timeout is stale
    this.post({ type: 'window' });
    try {
      return (await this.next('window', timeoutMs)).stats;
    } catch {
      return null;
    }
  }

  /** Ask the probe to stop; its final stats. */
  async finish(timeoutMs: number): Promise<FinalStats> {
    this.post({ type: 'finish' });
    return (await this.next('final', timeoutMs)).stats;
  }
}
