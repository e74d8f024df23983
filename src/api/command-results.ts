/**
 * Answers of the strategy runner to the API's commands (`strategy:mgmt:results`, correlated by the
 * command envelope's id), read through the live hub's shared reader: no connection and no blocking read
 * per request. Results that arrive before anyone waits for them are kept briefly (bounded).
 *
 * Replies are envelopes with a JSON payload: `<type>.result` (`{ ok, strategy_id, run_id, status,
 * error? }`) or `<type>.error` (`{ code, message }`); both become a {@link CommandOutcome}.
 */
import { streams } from '../contracts/catalog.js';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { STRATEGY_SERVICE } from '../strategy/commands.js';
import { outputCodec } from '../strategy/outputs.js';
import type { LiveHub, Subscription } from './live/hub.js';

const KEEP = 200;

export interface CommandOutcome {
  readonly ok: boolean;
  /** `running`, `stopped`, ... or the error code of an error reply. */
  readonly status: string;
  readonly runId: string | null;
  readonly error: string | null;
}

export class CommandResults {
  private sub: Promise<Subscription> | undefined;
  private readonly waiters = new Map<string, (r: CommandOutcome) => void>();
  private readonly recent = new Map<string, CommandOutcome>();

  constructor(
    private readonly hub: LiveHub,
    private readonly log: Logger,
  ) {}

  /** Start listening (idempotent; retried on the next call after a failure). Call before sending. */
  ready(): Promise<void> {
    this.sub ??= this.hub.subscribe(streams.serviceResults(STRATEGY_SERVICE), (_s, entries) => {
      for (const e of entries) {
        try {
          const env = outputCodec.decode(e.fields);
          if (env.correlationId) this.arrived(env.correlationId, outcome(env.type, env.payload));
        } catch (err) {
          this.log.debug({ err: errorMessage(err), id: e.id }, 'undecodable strategy result');
        }
      }
    });
    return this.sub.then(
      () => undefined,
      (err: unknown) => {
        this.sub = undefined;
        throw err;
      },
    );
  }

  /** The outcome of command `id`, or null after `ms`. */
  wait(id: string, ms: number): Promise<CommandOutcome | null> {
    const known = this.recent.get(id);
    if (known) return Promise.resolve(known);
    if (ms <= 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(null);
      }, ms);
      this.waiters.set(id, (r) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(r);
      });
    });
  }

  close(): void {
    void this.sub?.then((s) => s.close()).catch(() => undefined);
  }

  private arrived(id: string, r: CommandOutcome): void {
    const w = this.waiters.get(id);
    if (w) {
      w(r);
      return;
    }
    this.recent.set(id, r);
    if (this.recent.size > KEEP) {
      const oldest = this.recent.keys().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
  }
}

function outcome(type: string, p: Readonly<Record<string, unknown>>): CommandOutcome {
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  if (type.endsWith('.error'))
    return { ok: false, status: text(p['code']) ?? 'error', runId: null, error: text(p['message']) };
  return {
    ok: p['ok'] === true,
    status: text(p['status']) ?? 'unknown',
    runId: text(p['run_id']),
    error: text(p['error']),
  };
}
