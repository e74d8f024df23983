/**
 * Errors that become HTTP answers. Every error body is JSON `{ "error": "<message>", "code": "<code>" }`
 * (status and body code from `HTTP_ERRORS` in error-status.ts), plus `field` for an invalid strategy or
 * body (the dotted path in the payload).
 */
import { MarketbusError, TimeoutError, type ErrorCode } from '../util/errors.js';

/** An error raised by an API route; `extra` are further body fields (e.g. `field`). */
export class ApiError extends MarketbusError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly extra: Readonly<Record<string, string>> = {},
  ) {
    super(code, message);
  }
}

/**
 * The live runner refused `strategy.run` / `strategy.stop` (`ok: false`): 409 with body code
 * `<action>_<status>` (`run_unknown`, `run_invalid`), the status being the runner's free text.
 */
export class StrategyCommandRefusedError extends ApiError {
  readonly bodyCode: string;
  constructor(action: 'run' | 'stop', status: string, message: string) {
    super('STRATEGY_COMMAND_REFUSED', message);
    this.bodyCode = `${action}_${status.toLowerCase()}`;
  }
}

export const notFound = (what = 'not found'): ApiError => new ApiError('NOT_FOUND', what);
export const unauthorized = (message = 'not signed in'): ApiError => new ApiError('UNAUTHORIZED', message);

/** Resolve `p`, or fail with a TimeoutError (answered 503) after `ms`: no request waits on a dead Redis. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
