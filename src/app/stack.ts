/**
 * The one way services are started and stopped together: every started part is pushed on a stack,
 * and disposing the stack closes them in reverse order (last started, first closed), whether that
 * happens on a signal, on an error, or because a later start failed. Closing goes on past a part that
 * fails to close, so one bad part cannot leave the others open.
 */
import { MarketbusError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';

/** A close function made disposable, once: later calls return the first call's promise. */
export function disposable(close: () => Promise<void>): {
  readonly close: () => Promise<void>;
  readonly [Symbol.asyncDispose]: () => Promise<void>;
} {
  let closed: Promise<void> | undefined;
  const once = (): Promise<void> => (closed ??= close());
  return { close: once, [Symbol.asyncDispose]: once };
}

export class ServiceStack implements AsyncDisposable {
  private readonly parts: { readonly name: string; readonly part: AsyncDisposable }[] = [];
  private disposing: Promise<void> | undefined;

  /** `log`: when given, each part's close is logged (debug) with how long it took. */
  constructor(private readonly log?: Logger) {}

  /** Parts still to close. */
  get size(): number {
    return this.parts.length;
  }

  /** Push a started part (closed before everything pushed earlier); returns it. */
  use<T extends AsyncDisposable>(part: T, name = 'part'): T {
    if (this.disposing) throw new MarketbusError('CLOSED', `cannot add ${name}: the stack is closing`);
    this.parts.push({ name, part });
    return part;
  }

  /** Push a close function (e.g. for something that is not disposable itself). */
  defer(name: string, close: () => Promise<void> | void): void {
    this.use(
      disposable(async () => close()),
      name,
    );
  }

  /**
   * Run a start: on failure, close what this stack already holds (reverse order) and rethrow the start
   * error (it says why; a close failure after it would only hide that).
   */
  async start<T>(fn: (stack: this) => Promise<T>): Promise<T> {
    try {
      return await fn(this);
    } catch (err) {
      await this[Symbol.asyncDispose]().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Close every part in reverse order, each once, going on past failures; rejects with SHUTDOWN_FAILED
   * (causes in `cause`, an AggregateError when several) when any part failed to close. Idempotent.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.disposing ??= (async () => {
      const errors: { name: string; err: unknown }[] = [];
      for (let p = this.parts.pop(); p; p = this.parts.pop()) {
        const t0 = Date.now();
        try {
          this.log?.debug({ part: p.name }, 'closing');
          await p.part[Symbol.asyncDispose]();
          this.log?.debug({ part: p.name, ms: Date.now() - t0 }, 'closed');
        } catch (err) {
          this.log?.warn({ part: p.name, err: errorMessage(err) }, 'close failed');
          errors.push({ name: p.name, err });
        }
      }
      if (errors.length === 0) return;
      const what = errors.map((e) => `${e.name}: ${errorMessage(e.err)}`).join('; ');
      throw new MarketbusError('SHUTDOWN_FAILED', `failed to close ${what}`, {
        cause: errors.length === 1 ? errors[0]?.err : new AggregateError(errors.map((e) => e.err)),
      });
    })();
    return this.disposing;
  }

  /** Same as `[Symbol.asyncDispose]()`. */
  close(): Promise<void> {
    return this[Symbol.asyncDispose]();
  }
}

/**
 * The life of a command's services: `start` starts them, pushing each on the stack; then `until`
 * waits for the reason to stop (a signal, a replay's end; a rejection is an error that stops too);
 * then everything is closed in reverse order. A start that fails half-way closes what it started and
 * rethrows the start error. Nothing is left open when this settles.
 */
export async function runServices<T>(
  start: (stack: ServiceStack) => Promise<T>,
  until: (started: T) => Promise<unknown>,
  log?: Logger,
): Promise<void> {
  const stack = new ServiceStack(log);
  try {
    await until(await start(stack));
  } catch (err) {
    await stack.close().catch(() => undefined);
    throw err;
  }
  await stack.close();
}

/**
 * Close a service that talks to Redis through `client`; when it has not finished after `graceMs`,
 * destroy the client: commands queued while Redis is gone wait for replies that never come (the client
 * applies no per-command timeout), and destroying it fails them, so the service can finish.
 */
export async function closeOrCut(
  close: () => Promise<void>,
  client: { readonly isOpen: boolean; destroy(): void },
  graceMs = 3000,
): Promise<void> {
  const closing = close();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), graceMs)));
  try {
    if ((await Promise.race([closing, late])) === 'late' && client.isOpen) client.destroy();
    await closing;
  } finally {
    clearTimeout(timer);
  }
}
