#!/usr/bin/env node
// Makes a fresh clone ready for `npm run up` or `npm test`: checks Node, installs the locked npm
// dependencies when they are missing or stale, installs the OS packages the step needs (apt-get, as
// root) or prints the exact command, and builds the TypeScript. Plain Node: it runs before any
// dependency is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const step = process.argv[2] ?? 'up';
const root = new URL('..', import.meta.url).pathname;
const say = (msg) => process.stderr.write(`[setup] ${msg}\n`);

function fail(msg) {
  say(`ERROR: ${msg}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

function which(name) {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // next
    }
  }
  return undefined;
}

// 1. Node
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) fail(`Node ${process.versions.node} is too old: marketbus needs Node 20 or newer`);

// 2. npm dependencies, exactly as locked
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(marker) || statSync(lock).mtimeMs > statSync(marker).mtimeMs) {
  say('installing npm dependencies (npm ci)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

// 3. OS packages (Debian/Ubuntu names). Each need: the steps that want it, how to tell it is there.
const pythonHasRedis = () =>
  existsSync('/usr/bin/python3') &&
  spawnSync('/usr/bin/python3', ['-c', 'import redis'], { stdio: 'ignore' }).status === 0;
function hasPostgres() {
  if (process.env.TEST_DATABASE_URL) return true;
  try {
    return readdirSync('/usr/lib/postgresql').some((v) =>
      existsSync(join('/usr/lib/postgresql', v, 'bin', 'initdb')),
    );
  } catch {
    return false;
  }
}
const osNeeds = [
  {
    what: 'redis-server',
    pkg: 'redis-server',
    steps: ['up', 'test'],
    present: () => Boolean(which('redis-server')),
  },
  {
    what: 'redis-cli',
    pkg: 'redis-tools',
    steps: ['up', 'test'],
    present: () => Boolean(which('redis-cli')),
  },
  // The contract test reads the feed with redis-py, like a Python consumer would (docs/contracts.md §6).
  { what: 'python3 with redis-py', pkg: 'python3-redis', steps: ['test'], present: pythonHasRedis },
  // The history store's conformance suite runs on a real ClickHouse (Debian's) and a real PostgreSQL
  // (the machine's, else a private cluster made with Debian's binaries).
  {
    what: 'clickhouse-server',
    pkg: 'clickhouse-server',
    steps: ['test'],
    present: () => Boolean(which('clickhouse-server')),
  },
  {
    what: 'time zone data (ClickHouse needs it)',
    pkg: 'tzdata',
    steps: ['test'],
    present: () => existsSync('/usr/share/zoneinfo/UTC'),
  },
  { what: 'PostgreSQL binaries', pkg: 'postgresql', steps: ['test'], present: hasPostgres },
  // The dashboard's browser test drives Debian's Chromium with playwright-core (no browser download).
  { what: 'chromium', pkg: 'chromium', steps: ['test'], present: () => Boolean(which('chromium')) },
  // deploy/prometheus is checked with promtool and evaluated by a real Prometheus scraping the services.
  // The tests start their own on a free port; on a machine with systemd the package also starts its own
  // service on :9090, which the tests never use.
  {
    what: 'prometheus and promtool',
    pkg: 'prometheus',
    steps: ['test'],
    present: () => Boolean(which('prometheus') && which('promtool')),
  },
];
const missing = osNeeds.filter((n) => n.steps.includes(step) && !n.present());
if (missing.length > 0) {
  const pkgs = [...new Set(missing.map((n) => n.pkg))];
  const what = missing.map((n) => n.what).join(', ');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const cmd = `apt-get update && apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  if (!which('apt-get')) fail(`missing ${what}; install ${pkgs.join(', ')} with your package manager`);
  if (!isRoot && !which('sudo')) fail(`missing ${what}; run as root: ${cmd}`);
  say(`installing ${pkgs.join(', ')} for ${what} (${cmd})`);
  const aptEnv = { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  const asRoot = (args) => (isRoot ? run(args[0], args.slice(1), aptEnv) : run('sudo', args, aptEnv));
  asRoot(['apt-get', 'update']);
  asRoot(['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs]);
}

// 4. Build
say('building (tsc)');
try {
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], {
    cwd: root,
    stdio: 'inherit',
  });
} catch {
  fail('TypeScript build failed');
}
say(`ready for ${step}`);
