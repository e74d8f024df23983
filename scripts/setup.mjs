#!/usr/bin/env node
// Makes a fresh clone ready for `npm run up` or `npm test`: checks Node, installs the locked npm
// dependencies when they are missing or stale, installs the OS packages the step needs (Debian's
// apt-get, as root) or prints the exact command, and builds the TypeScript. Plain Node: it runs before
// any dependency is installed.
//
//   node scripts/setup.mjs [up|test] [--no-install]
//
// OS packages (docs/security.md, "Installing: scripts/setup.mjs"): apt-get and sudo are run by absolute
// path (/usr/bin/apt-get, /usr/bin/sudo), never found through PATH (which `npm run` starts with
// node_modules/.bin); the script says what it installs and why before it does; the packages' services
// are not started (a policy-rc.d that refuses every start exists during the install, as Debian's
// invoke-rc.d and deb-systemd-invoke ask it); `--no-install` or MARKETBUS_NO_INSTALL=1 prints the
// command instead of running it.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const args = process.argv.slice(2);
const step = args.find((a) => !a.startsWith('-')) ?? 'up';
const noInstall = args.includes('--no-install') || process.env.MARKETBUS_NO_INSTALL === '1';
const APT_GET = '/usr/bin/apt-get';
const SUDO = '/usr/bin/sudo';
const POLICY_RC_D = '/usr/sbin/policy-rc.d';
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
    why: 'the embedded Redis of `marketbus up` and of the tests',
    steps: ['up', 'test'],
    present: () => Boolean(which('redis-server')),
  },
  {
    what: 'redis-cli',
    pkg: 'redis-tools',
    why: 'operator checks of the Redis that marketbus uses',
    steps: ['up', 'test'],
    present: () => Boolean(which('redis-cli')),
  },
  // The contract test reads the feed with redis-py, like a Python consumer would (docs/contracts.md §6).
  {
    what: 'python3 with redis-py',
    pkg: 'python3-redis',
    why: 'the contract test, which reads the feed as a Python consumer',
    steps: ['test'],
    present: pythonHasRedis,
  },
  // The history store's conformance suite runs on a real ClickHouse (Debian's) and a real PostgreSQL
  // (the machine's, else a private cluster made with Debian's binaries).
  {
    what: 'clickhouse-server',
    pkg: 'clickhouse-server',
    why: 'the history store conformance suite on ClickHouse',
    steps: ['test'],
    present: () => Boolean(which('clickhouse-server')),
  },
  {
    what: 'time zone data (ClickHouse needs it)',
    pkg: 'tzdata',
    why: 'ClickHouse reads time zones',
    steps: ['test'],
    present: () => existsSync('/usr/share/zoneinfo/UTC'),
  },
  {
    what: 'PostgreSQL binaries',
    pkg: 'postgresql',
    why: 'the history store conformance suite and the API tests on PostgreSQL',
    steps: ['test'],
    present: hasPostgres,
  },
  // The dashboard's browser test drives Debian's Chromium with playwright-core (no browser download).
  {
    what: 'chromium',
    pkg: 'chromium',
    why: 'the dashboard test in a real browser',
    steps: ['test'],
    present: () => Boolean(which('chromium')),
  },
  // deploy/prometheus is checked with promtool and evaluated by a real Prometheus scraping the services.
  // The tests start their own on a free port; on a machine with systemd the package also starts its own
  // service on :9090 unless kept from it (below); the tests never use it.
  {
    what: 'prometheus and promtool',
    pkg: 'prometheus',
    why: 'checking and evaluating deploy/prometheus',
    steps: ['test'],
    present: () => Boolean(which('prometheus') && which('promtool')),
  },
];
const missing = osNeeds.filter((n) => n.steps.includes(step) && !n.present());
if (missing.length > 0) {
  const pkgs = [...new Set(missing.map((n) => n.pkg))];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // One root shell: a policy-rc.d that refuses to start services (exit 101) while the packages install,
  // removed afterwards unless one was there before (then it already decides).
  const script = [
    'set -e',
    `if [ -e ${POLICY_RC_D} ]; then own=0; else own=1; printf '#!/bin/sh\\nexit 101\\n' > ${POLICY_RC_D}; chmod 755 ${POLICY_RC_D}; fi`,
    `trap 'if [ "$own" = 1 ]; then rm -f ${POLICY_RC_D}; fi' EXIT`,
    `${APT_GET} update`,
    `DEBIAN_FRONTEND=noninteractive ${APT_GET} install -y --no-install-recommends ${pkgs.join(' ')}`,
  ].join('; ');
  const argv = [...(isRoot ? [] : [SUDO]), '/bin/sh', '-c', script];
  const printed = argv.map((a) => (/^[\w/.-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  say(`step "${step}" needs these Debian packages, not installed yet (their services will not be started):`);
  for (const n of missing) say(`  ${n.pkg}: ${n.what}, for ${n.why}`);
  if (noInstall) {
    say('not installing (--no-install / MARKETBUS_NO_INSTALL=1); run this as a user who may, then again:');
    process.stdout.write(`${printed}\n`);
    process.exit(1);
  }
  if (!existsSync(APT_GET)) fail(`no ${APT_GET}: install ${pkgs.join(', ')} with your package manager`);
  if (!isRoot && !existsSync(SUDO)) fail(`not root and no ${SUDO}; as root, run: ${printed}`);
  say(`installing: ${printed}`);
  run(argv[0], argv.slice(1));
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
// The dashboard is part of the build output (and so of the npm package).
run(process.execPath, [join(root, 'scripts', 'copy-public.mjs')]);
say(`ready for ${step}`);
