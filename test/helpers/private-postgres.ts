/**
 * A private PostgreSQL cluster: Debian's `/usr/lib/postgresql/<newest v>/bin/initdb` and `pg_ctl` in a
 * temporary directory, on a free loopback port, trust auth for the superuser `postgres`. When we are
 * root it runs as `postgres` (or `nobody`) through runuser, or su where runuser is missing, because
 * PostgreSQL refuses to run as root. It is never the machine's own server, so nobody's data is touched.
 *
 * Shared by the test helper (test/helpers/postgres.ts, step 3) and the soak (bench/soak/postgres.ts);
 * plain Node and pg, no vitest, so bench/ can import it.
 *
 * `stop()` stops the cluster (fast shutdown, immediate when that times out) and removes its directory.
 * A process exit without `stop()` still stops it synchronously (`-m immediate`) and removes the
 * directory, so a crashed test run or soak leaves no postmaster behind.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findExecutable, freePort } from '../../src/bus/redis-server.js';

const run = promisify(execFile);

/** How to get the server binaries on Debian/Ubuntu. */
export const INSTALL_HINT = 'apt-get install -y postgresql';

export interface PrivatePostgresOptions {
  /**
   * A database created in the new cluster (owner `postgres`); `[a-z_][a-z0-9_]*`, at most 63 characters.
   * Default: none, and `url` names the `postgres` database.
   */
  readonly database?: string;
  /** Prefix of the temporary directory's name under os.tmpdir(). Default `marketbus-pg-`. */
  readonly dirPrefix?: string;
  /**
   * `false` runs `initdb -N` and the server with `fsync=off`: faster, and a machine crash may lose the
   * data, which a throw-away test cluster does not mind. Default `true` (PostgreSQL's defaults).
   */
  readonly fsync?: boolean;
}

export interface PrivatePostgres {
  /** `postgresql://postgres@127.0.0.1:<port>/<database>`, trust auth. */
  readonly url: string;
  /** The loopback TCP port, chosen free at start. */
  readonly port: number;
  /** `options.database`, or `postgres`. */
  readonly database: string;
  /** The postmaster's pid (its backends are its children). */
  readonly pid: number;
  /** Major version of the binaries, the directory name under /usr/lib/postgresql, e.g. `16`. */
  readonly version: string;
  /** Stop the cluster (fast shutdown, 30 s at most, then immediate) and remove its directory. Idempotent. */
  stop(): Promise<void>;
}

/** The server binaries (initdb, pg_ctl) are not installed. */
export class PostgresNotInstalledError extends Error {
  readonly code = 'POSTGRES_NOT_INSTALLED';
  constructor() {
    super(
      `the PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb, pg_ctl) are missing. Install them with: ${INSTALL_HINT}`,
    );
    this.name = 'PostgresNotInstalledError';
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `/usr/lib/postgresql/<newest version>/bin`, holding initdb and pg_ctl. */
function serverBin(): { bin: string; version: string } {
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // no PostgreSQL packages at all
  }
  for (const version of versions.sort((a, b) => Number(b) - Number(a))) {
    const bin = join(root, version, 'bin');
    if (executable(join(bin, 'initdb')) && executable(join(bin, 'pg_ctl'))) return { bin, version };
  }
  throw new PostgresNotInstalledError();
}

/** The account the server runs as when we are root; undefined when we are not. */
function serverAccount(): { user: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const user of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
      return { user, uid, gid };
    } catch {
      // no such account
    }
  }
  throw new Error('running as root and neither a postgres nor a nobody account exists to run PostgreSQL');
}

/** argv to run `argv` as `user` (runuser, or su when runuser is missing); as is when not root. */
function asUser(user: string | undefined, argv: readonly string[]): [string, string[]] {
  const [cmd = '', ...args] = argv;
  if (user === undefined) return [cmd, args];
  const runuser = findExecutable('runuser');
  if (runuser !== undefined) return [runuser, ['-u', user, '--', cmd, ...args]];
  // `nobody` has no login shell, hence -s.
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return ['su', [user, '-s', '/bin/sh', '-c', quoted]];
}

/** Start a private cluster; see the file comment. Throws PostgresNotInstalledError without the binaries. */
export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const database = options.database ?? 'postgres';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(database)) {
    throw new Error(`private PostgreSQL: database name ${JSON.stringify(database)} is not [a-z_][a-z0-9_]*`);
  }
  const fsync = options.fsync ?? true;
  const { bin, version } = serverBin();
  const account = serverAccount();
  const dir = mkdtempSync(join(tmpdir(), options.dirPrefix ?? 'marketbus-pg-'));
  if (account) chownSync(dir, account.uid, account.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const pgCtl = join(bin, 'pg_ctl');
  const exec = async (argv: string[]): Promise<void> => {
    const [cmd, args] = asUser(account?.user, argv);
    await run(cmd, args, { cwd: dir, timeout: 60_000 });
  };
  const stopNow = (): void => {
    const [cmd, args] = asUser(account?.user, [pgCtl, '-D', data, '-m', 'immediate', 'stop']);
    spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);
  try {
    const initdb = [
      join(bin, 'initdb'),
      '-D',
      data,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
    ];
    await exec(fsync ? initdb : [...initdb, '-N']);
    let port = 0;
    // A free port can be taken between probing and binding: try a few times.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const serverOpts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1${fsync ? '' : ' -c fsync=off'}`;
      try {
        await exec([pgCtl, '-D', data, '-l', log, '-w', '-t', '60', '-o', serverOpts, 'start']);
        break;
      } catch (err) {
        if (attempt >= 3) {
          let tail = '';
          try {
            tail = readFileSync(log, 'utf8').slice(-2000);
          } catch {
            // no log yet
          }
          throw new Error(`pg_ctl start failed: ${String(err)}\n${tail}`, { cause: err });
        }
      }
    }
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (database !== 'postgres') {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'postgres',
        database: 'postgres',
        connectionTimeoutMillis: 10_000,
      });
      client.on('error', () => undefined); // the server going away must not crash the process
      await client.connect();
      try {
        // The name was checked above; CREATE DATABASE takes no bind parameters.
        await client.query(`CREATE DATABASE ${database}`);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    let stopping: Promise<void> | undefined;
    return {
      url: `postgresql://postgres@127.0.0.1:${port}/${database}`,
      port,
      database,
      pid,
      version,
      stop: () => {
        stopping ??= (async () => {
          try {
            await exec([pgCtl, '-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
          } catch {
            stopNow(); // did not stop in time: immediate
          }
          process.removeListener('exit', stopNow);
          rmSync(dir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (err) {
    stopNow();
    process.removeListener('exit', stopNow);
    throw err;
  }
}
