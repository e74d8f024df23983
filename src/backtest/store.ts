/**
 * The `backtests` table (migration 0003): status transitions are single conditional UPDATEs, so the
 * service (cancel) and the workers (start, progress, finish) never overwrite each other:
 *
 *   queued ──start──▶ running ──finish──▶ done | failed | cancelled
 *     │  ▲               │
 *     │  └──retry────────┘ (an attempt failed; the job queue runs it again after its backoff)
 *     └──cancel──▶ cancelled          running + cancel: `cancel_requested`, the worker stops at its next page
 */
import type { SqlExecutor, SqlRow } from '../sql/executor.js';
import type { BacktestResult } from './result.js';
import type { BacktestStatus, BacktestView } from '../commands/services.js';
import { NotFoundError, QuotaExceededError } from '../util/errors.js';

export interface BacktestRecord {
  readonly id: string;
  readonly strategyId: string;
  readonly userId: string;
  readonly status: BacktestStatus;
  readonly progress: number;
  readonly from: number;
  readonly to: number;
  readonly attempts: number;
  readonly cancelRequested: boolean;
  readonly correlationId: string;
  readonly error: string | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** Null until finished (or when read without it). */
  readonly result: Readonly<Record<string, unknown>> | null;
}

const COLUMNS =
  'id, strategy_id, user_id, status, progress, from_ts, to_ts, attempts, cancel_requested, correlation_id, error, created_at, started_at, finished_at';

const text = (v: unknown): string =>
  typeof v === 'string' ? v : v === null || v === undefined ? '' : JSON.stringify(v);
const time = (v: unknown): number => (v instanceof Date ? v.getTime() : new Date(String(v)).getTime());
const timeOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : time(v));

function row(r: SqlRow): BacktestRecord {
  const raw = r['result'];
  const parsed: unknown = typeof raw === 'string' ? JSON.parse(raw) : raw;
  return {
    id: text(r['id']),
    strategyId: text(r['strategy_id']),
    userId: text(r['user_id']),
    status: text(r['status']) as BacktestStatus,
    progress: Number(r['progress']),
    from: time(r['from_ts']),
    to: time(r['to_ts']),
    attempts: Number(r['attempts']),
    cancelRequested: r['cancel_requested'] === true,
    correlationId: text(r['correlation_id']),
    error: r['error'] === null || r['error'] === undefined ? null : text(r['error']),
    createdAt: time(r['created_at']),
    startedAt: timeOrNull(r['started_at']),
    finishedAt: timeOrNull(r['finished_at']),
    result:
      parsed !== null && typeof parsed === 'object' ? (parsed as Readonly<Record<string, unknown>>) : null,
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The public (snake_case, ISO-8601) form of a record. */
export function backtestToView(b: BacktestRecord): BacktestView {
  return {
    id: b.id,
    strategy_id: b.strategyId,
    user_id: b.userId,
    status: b.status,
    progress: b.progress,
    from: iso(b.from),
    to: iso(b.to),
    attempts: b.attempts,
    cancel_requested: b.cancelRequested,
    error: b.error,
    created_at: iso(b.createdAt),
    started_at: b.startedAt === null ? null : iso(b.startedAt),
    finished_at: b.finishedAt === null ? null : iso(b.finishedAt),
    result: b.result === null ? null : { ...b.result },
  };
}

/**
 * Insert a queued backtest; an existing one with the same id is returned as it is (idempotent). With
 * `maxActivePerUser`, a user with that many queued or running gets a QuotaExceededError instead
 * (counted and inserted in one statement).
 */
export async function insertBacktest(
  db: SqlExecutor,
  b: {
    id: string;
    strategyId: string;
    userId: string;
    from: number;
    to: number;
    correlationId: string;
    maxActivePerUser?: number | undefined;
  },
): Promise<BacktestRecord> {
  const max = b.maxActivePerUser ?? null;
  await db.query(
    `INSERT INTO backtests (id, strategy_id, user_id, status, from_ts, to_ts, correlation_id)
     SELECT $1, $2, $3, 'queued', $4, $5, $6
     WHERE $7::int IS NULL
        OR (SELECT count(*) FROM backtests WHERE user_id = $3 AND status IN ('queued', 'running')) < $7::int
     ON CONFLICT (id) DO NOTHING`,
    [b.id, b.strategyId, b.userId, new Date(b.from), new Date(b.to), b.correlationId, max],
  );
  const got = await selectBacktest(db, b.id, false);
  if (!got && max !== null)
    throw new QuotaExceededError(
      'queued_backtests',
      max,
      `a user has at most ${max} backtests queued or running at once`,
    );
  // Deleted between the insert and the read (the strategy was deleted meanwhile).
  if (!got) throw new NotFoundError('backtest', b.id);
  return got;
}

export async function selectBacktest(
  db: SqlExecutor,
  id: string,
  withResult = true,
): Promise<BacktestRecord | null> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS}${withResult ? ', result' : ''} FROM backtests WHERE id = $1`,
    [id],
  );
  return rows[0] ? row(rows[0]) : null;
}

/**
 * Backtests of a strategy (or a user), newest first, without results: at most `limit` (default 100),
 * older than the backtest `after` (its id).
 */
export async function selectBacktests(
  db: SqlExecutor,
  by: { strategyId?: string; userId?: string },
  page: { limit?: number; after?: string | undefined } = {},
): Promise<BacktestRecord[]> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM backtests
     WHERE ($1::text IS NULL OR strategy_id = $1) AND ($2::text IS NULL OR user_id = $2)
       AND ($4::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM backtests WHERE id = $4))
     ORDER BY created_at DESC, id DESC LIMIT $3`,
    [by.strategyId ?? null, by.userId ?? null, page.limit ?? 100, page.after ?? null],
  );
  return rows.map(row);
}

/** queued (or running, after a worker died) -> running. Null when it must not run (cancelled, finished). */
export async function startAttempt(
  db: SqlExecutor,
  id: string,
  attempt: number,
): Promise<BacktestRecord | null> {
  const { rows } = await db.query(
    `UPDATE backtests SET status = 'running', attempts = $2, progress = 0, error = NULL,
       started_at = COALESCE(started_at, now())
     WHERE id = $1 AND status IN ('queued', 'running') AND NOT cancel_requested RETURNING ${COLUMNS}`,
    [id, attempt],
  );
  return rows[0] ? row(rows[0]) : null;
}

/** Record progress (0..1); returns whether a cancel was requested (null when the row is gone). */
export async function recordProgress(db: SqlExecutor, id: string, fraction: number): Promise<boolean | null> {
  const { rows } = await db.query(
    `UPDATE backtests SET progress = $2 WHERE id = $1 AND status = 'running' RETURNING cancel_requested`,
    [id, Math.min(1, Math.max(0, fraction))],
  );
  return rows[0] ? rows[0]['cancel_requested'] === true : null;
}

export async function cancelRequested(db: SqlExecutor, id: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT cancel_requested, status FROM backtests WHERE id = $1`, [id]);
  const r = rows[0];
  return !r || r['cancel_requested'] === true || r['status'] !== 'running';
}

/** running | queued -> done | failed | cancelled, with the result. False when it had finished already. */
export async function finishBacktest(
  db: SqlExecutor,
  id: string,
  status: 'done' | 'failed' | 'cancelled',
  result: BacktestResult | null,
  error: string | null,
): Promise<boolean> {
  const { rows } = await db.query(
    `UPDATE backtests SET status = $2, result = $3::jsonb, error = $4, finished_at = now(),
       progress = CASE WHEN $2 = 'done' THEN 1 ELSE progress END
     WHERE id = $1 AND status IN ('queued', 'running') RETURNING id`,
    [id, status, result === null ? null : JSON.stringify(result), error?.slice(0, 2000) ?? null],
  );
  return rows.length > 0;
}

/** An attempt failed and another follows: back to queued, with the error for people to see. */
export async function markRetrying(db: SqlExecutor, id: string, error: string): Promise<void> {
  await db.query(`UPDATE backtests SET status = 'queued', error = $2 WHERE id = $1 AND status = 'running'`, [
    id,
    error.slice(0, 2000),
  ]);
}

/**
 * Ask for a cancel: a queued backtest is cancelled at once; a running one gets `cancel_requested` and
 * is cancelled by its worker at the next page. Finished ones are left as they are. Null when unknown.
 */
export async function requestCancel(db: SqlExecutor, id: string): Promise<BacktestRecord | null> {
  const { rows } = await db.query(
    `UPDATE backtests SET
       cancel_requested = CASE WHEN status IN ('queued', 'running') THEN true ELSE cancel_requested END,
       finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
       status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return rows[0] ? row(rows[0]) : null;
}
