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

/** What the body says when the runner refuses with a known status; any other status is `<action>_failed`. */
const REFUSALS: Readonly<Record<string, string>> = {
  unknown: 'the strategy runner does not know this strategy',
  invalid: 'the stored strategy is not valid for the runner',
};

/**
 * The live runner refused `strategy.run` / `strategy.stop` (`ok: false`, or an error reply): 409 with
 * body code `<action>_<status>` for a known status (`run_unknown`, `run_invalid`), else
 * `<action>_failed`, and a fixed message. The runner's own text (exception messages) is for the log.
 */
export class StrategyCommandRefusedError extends ApiError {
  readonly bodyCode: string;
  constructor(action: 'run' | 'stop', status: string) {
    const known = Object.hasOwn(REFUSALS, status) ? REFUSALS[status] : undefined;
    super('STRATEGY_COMMAND_REFUSED', known ?? `the strategy runner could not ${action} the strategy`);
    this.bodyCode = `${action}_${known === undefined ? 'failed' : status}`;
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
