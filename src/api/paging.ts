/**
 * Pages of the API's lists (`GET /strategies`, `GET /strategies/:id/backtests`, events and metrics):
 * `limit` entries (default `PAGE_LIMIT_DEFAULT`; a larger one than `PAGE_LIMIT_MAX` is capped to it,
 * zero, negative or not a number is a 400) and a cursor, `after=<id>` (the `next_after` of the previous
 * page; null on the last page).
 */
import { z } from 'zod';
import { ApiError } from './http-errors.js';
import type { LimitSettings } from './limits/settings.js';

type PageSizes = Pick<LimitSettings, 'pageLimitDefault' | 'pageLimitMax'>;

/** `limit` of a query string: a positive integer, optional (any size: the caller caps it). */
export const limitParam = z.coerce.number().int().min(1).optional();

const Page = z.object({ limit: limitParam, after: z.string().min(1).max(200).optional() });

/** The page size for a requested `limit`: the default when none, capped to the maximum. */
export function pageLimit(limit: number | undefined, s: PageSizes): number {
  return Math.min(limit ?? s.pageLimitDefault, s.pageLimitMax);
}

/** The query's data by `schema`, or a 400 `bad_query` naming the first bad parameter. */
export function parseQuery<T>(schema: z.ZodType<T>, query: unknown): T {
  const q = schema.safeParse(query);
  if (q.success) return q.data;
  const issue = q.error.issues[0];
  throw new ApiError('BAD_QUERY', `${issue?.path.join('.') ?? 'query'}: ${issue?.message ?? ''}`);
}

/** `limit` and `after` of a list request. */
export function parsePage(query: unknown, s: PageSizes): { limit: number; after: string | undefined } {
  const q = parseQuery(Page, query);
  return { limit: pageLimit(q.limit, s), after: q.after };
}

/** The cursor of the page after `items` (read with one more than `limit`), and the page itself. */
export function pageOf<T>(items: readonly T[], limit: number, idOf: (t: T) => string): [T[], string | null] {
  const page = items.slice(0, limit);
  const last = page[page.length - 1];
  return [page, items.length > limit && last !== undefined ? idOf(last) : null];
}
