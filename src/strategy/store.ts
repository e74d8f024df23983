/**
 * Strategies and their runs in the relational database. A strategy is data (its API payload, kept
 * as JSON); a run is one strategy running live. Only the API creates strategies and starts or stops
 * runs; runner instances read the active runs.
 */
import { randomUUID } from 'node:crypto';
import type { SqlExecutor, SqlRow } from '../sql/executor.js';
import { QuotaExceededError } from '../util/errors.js';

export type RunStatus = 'running' | 'stopped' | 'failed';

export interface StrategyRecord {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  /** The validated payload as created (API fields, snake_case). */
  readonly spec: unknown;
  readonly createdAt: number;
}

export interface RunRecord {
  readonly id: string;
  readonly strategyId: string;
  readonly userId: string;
  readonly instrumentKey: string;
  readonly status: RunStatus;
  readonly startedAt: number;
  readonly stoppedAt: number | null;
  readonly error: string | null;
}

export interface ActiveRun extends RunRecord {
  readonly strategy: StrategyRecord;
}

const str = (r: SqlRow, k: string): string => String(r[k]);
const time = (r: SqlRow, k: string): number => {
  const v = r[k];
  return v instanceof Date ? v.getTime() : Number(v);
};
const timeOrNull = (r: SqlRow, k: string): number | null =>
  r[k] === null || r[k] === undefined ? null : time(r, k);
const json = (v: unknown): unknown => (typeof v === 'string' ? (JSON.parse(v) as unknown) : v);

function strategyRow(r: SqlRow, prefix = ''): StrategyRecord {
  return {
    id: str(r, `${prefix}id`),
    userId: str(r, `${prefix}user_id`),
    name: str(r, `${prefix}name`),
    spec: json(r[`${prefix}spec`]),
    createdAt: time(r, `${prefix}created_at`),
  };
}

function runRow(r: SqlRow): RunRecord {
  return {
    id: str(r, 'id'),
    strategyId: str(r, 'strategy_id'),
    userId: str(r, 'user_id'),
    instrumentKey: str(r, 'instrument_key'),
    status: str(r, 'status') as RunStatus,
    startedAt: time(r, 'started_at'),
    stoppedAt: timeOrNull(r, 'stopped_at'),
    error: r['error'] === null || r['error'] === undefined ? null : str(r, 'error'),
  };
}

/**
 * Store a new strategy of `userId`. With `maxPerUser`, a user who keeps that many already gets a
 * QuotaExceededError instead (counted and inserted in one statement).
 */
export async function createStrategy(
  db: SqlExecutor,
  userId: string,
  name: string,
  spec: unknown,
  opts: { readonly maxPerUser?: number } = {},
): Promise<StrategyRecord> {
  const max = opts.maxPerUser ?? null;
  const { rows } = await db.query(
    `INSERT INTO strategies (id, user_id, name, spec) SELECT $1, $2, $3, $4::jsonb
     WHERE $5::int IS NULL OR (SELECT count(*) FROM strategies WHERE user_id = $2) < $5::int
     RETURNING id, user_id, name, spec, created_at`,
    [randomUUID(), userId, name, JSON.stringify(spec), max],
  );
  if (!rows[0])
    throw new QuotaExceededError('strategies', max ?? 0, `a user keeps at most ${max ?? 0} strategies`);
  return strategyRow(rows[0]);
}

export async function getStrategy(db: SqlExecutor, id: string): Promise<StrategyRecord | null> {
  const { rows } = await db.query(
    'SELECT id, user_id, name, spec, created_at FROM strategies WHERE id = $1',
    [id],
  );
  return rows[0] ? strategyRow(rows[0]) : null;
}

/**
 * Strategies of a user, oldest first: at most `limit`, after the strategy `after` (its id; the page
 * after it in the same order).
 */
export async function listStrategies(
  db: SqlExecutor,
  userId: string,
  page: { readonly limit?: number; readonly after?: string | undefined } = {},
): Promise<StrategyRecord[]> {
  const { rows } = await db.query(
    `SELECT id, user_id, name, spec, created_at FROM strategies WHERE user_id = $1
     AND ($2::text IS NULL OR (created_at, id) > (SELECT created_at, id FROM strategies WHERE id = $2 AND user_id = $1))
     ORDER BY created_at, id LIMIT $3`,
    [userId, page.after ?? null, page.limit ?? null],
  );
  return rows.map((r) => strategyRow(r));
}

/** Start a run of a strategy (stopping a running one of the same strategy first). */
export async function startRun(
  db: SqlExecutor,
  strategy: StrategyRecord,
  instrumentKey: string,
  runId: string = randomUUID(),
): Promise<RunRecord> {
  await db.query(
    `UPDATE strategy_runs SET status = 'stopped', stopped_at = now() WHERE strategy_id = $1 AND status = 'running'`,
    [strategy.id],
  );
  const { rows } = await db.query(
    `INSERT INTO strategy_runs (id, strategy_id, user_id, instrument_key, status) VALUES ($1, $2, $3, $4, 'running')
     ON CONFLICT (id) DO UPDATE SET status = 'running' RETURNING *`,
    [runId, strategy.id, strategy.userId, instrumentKey],
  );
  return runRow(rows[0] as SqlRow);
}

/** Stop the running run of a strategy; returns it, or null when none was running. */
export async function stopRun(db: SqlExecutor, strategyId: string): Promise<RunRecord | null> {
  const { rows } = await db.query(
    `UPDATE strategy_runs SET status = 'stopped', stopped_at = now() WHERE strategy_id = $1 AND status = 'running' RETURNING *`,
    [strategyId],
  );
  return rows[0] ? runRow(rows[0]) : null;
}

export async function failRun(db: SqlExecutor, runId: string, error: string): Promise<void> {
  await db.query(
    `UPDATE strategy_runs SET status = 'failed', stopped_at = now(), error = $2 WHERE id = $1 AND status = 'running'`,
    [runId, error.slice(0, 2000)],
  );
}

export async function getRun(db: SqlExecutor, runId: string): Promise<RunRecord | null> {
  const { rows } = await db.query('SELECT * FROM strategy_runs WHERE id = $1', [runId]);
  return rows[0] ? runRow(rows[0]) : null;
}

/** The latest run of each of `strategyIds` that has one. */
export async function latestRuns(
  db: SqlExecutor,
  strategyIds: readonly string[],
): Promise<Map<string, RunRecord>> {
  if (strategyIds.length === 0) return new Map();
  const { rows } = await db.query(
    `SELECT DISTINCT ON (strategy_id) * FROM strategy_runs WHERE strategy_id = ANY($1::text[])
     ORDER BY strategy_id, started_at DESC, id DESC`,
    [[...strategyIds]],
  );
  return new Map(rows.map((r) => [str(r, 'strategy_id'), runRow(r)]));
}

/** Running runs of a user, the one of strategy `except` (which a new run replaces) left out. */
export async function countRunningRuns(db: SqlExecutor, userId: string, except: string): Promise<number> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM strategy_runs WHERE user_id = $1 AND status = 'running' AND strategy_id <> $2`,
    [userId, except],
  );
  return Number(rows[0]?.['n'] ?? 0);
}

/** Every running run with its strategy. */
export async function activeRuns(db: SqlExecutor): Promise<ActiveRun[]> {
  const { rows } = await db.query(
    `SELECT r.*, s.id AS s_id, s.user_id AS s_user_id, s.name AS s_name, s.spec AS s_spec, s.created_at AS s_created_at
     FROM strategy_runs r JOIN strategies s ON s.id = r.strategy_id WHERE r.status = 'running' ORDER BY r.started_at, r.id`,
  );
  return rows.map((r) => ({ ...runRow(r), strategy: strategyRow(r, 's_') }));
}
