/**
 * Errors that become HTTP answers. Every error body is JSON `{ "error": "<message>", "code": "<code>" }`,
 * plus `field` for an invalid strategy (the dotted path in the payload).
 */
import { TimeoutError } from '../util/errors.js';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly extra: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what = 'not found'): ApiError => new ApiError(404, 'not_found', what);
export const unauthorized = (message = 'not signed in'): ApiError =>
  new ApiError(401, 'unauthorized', message);

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
