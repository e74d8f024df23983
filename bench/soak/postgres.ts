/**
 * The soak's PostgreSQL: a private cluster (test/helpers/private-postgres.ts) with a `marketbus_soak`
 * database. Never the machine's own server: the soak writes ~2,400 history rows a second and must not
 * touch anybody's data. fsync stays on (PostgreSQL's default), so the soak measures a normal server.
 * `stop()` stops the cluster and removes its directory; a process exit without `stop()` still stops it
 * (synchronously, `-m immediate`).
 */
import {
  PostgresNotInstalledError,
  startPrivatePostgres as startCluster,
  type PrivatePostgres,
} from '../../test/helpers/private-postgres.js';

export type { PrivatePostgres };

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  try {
    return await startCluster({ database: 'marketbus_soak', dirPrefix: 'marketbus-soak-pg-' });
  } catch (err) {
    if (err instanceof PostgresNotInstalledError) {
      throw new Error(`the soak needs a private PostgreSQL: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
