/**
 * Attacks on `scripts/setup.mjs` (docs/security.md, "Installing: scripts/setup.mjs"): `npm run` puts
 * node_modules/.bin first on PATH, so a dependency (or anyone who can write there) could ship an
 * `apt-get` or `sudo` that the install step runs as root. Here a PATH whose first directory holds such
 * fakes: they are never called, the step names apt-get and sudo by absolute path, says what it installs
 * and why, keeps the packages' services from starting, and with `--no-install` (or
 * MARKETBUS_NO_INSTALL=1) prints the command instead of running it. Nothing is installed here.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SETUP = resolve('scripts/setup.mjs');

/** A directory of fake `apt-get` and `sudo` that record being called. */
function fakeBin(): string {
  const dir = mkdtempSync(join(tmpdir(), 'marketbus-fakebin-'));
  for (const name of ['apt-get', 'sudo']) {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\necho "$@" > "${dir}/${name}.called"\n`);
    chmodSync(file, 0o755);
  }
  return dir;
}

/** setup.mjs for the `test` step, on a PATH of only the fakes (so redis-server and others seem missing). */
function setup(args: string[], env: Record<string, string>, bin: string) {
  const r = spawnSync(process.execPath, [SETUP, 'test', ...args], {
    env: { HOME: process.env['HOME'] ?? '/root', PATH: bin, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('scripts/setup.mjs installs OS packages only by absolute path, and says so first', () => {
  it.each([
    ['--no-install', [['--no-install'], {}]],
    ['MARKETBUS_NO_INSTALL=1', [[], { MARKETBUS_NO_INSTALL: '1' }]],
  ] as const)('%s prints the exact command and runs nothing', (_name, [args, env]) => {
    const bin = fakeBin();
    const r = setup([...args], { ...env }, bin);
    expect(r.status, r.stderr).toBe(1);
    // The fakes first on PATH were never called.
    expect(existsSync(join(bin, 'apt-get.called'))).toBe(false);
    expect(existsSync(join(bin, 'sudo.called'))).toBe(false);
    // What and why, before anything.
    expect(r.stderr).toMatch(/redis-server: redis-server, for the embedded Redis/);
    expect(r.stderr).toMatch(/their services will not be started/);
    // The command: absolute paths only, a policy-rc.d refusing service starts around the install.
    const cmd = r.stdout.trim();
    expect(cmd).toMatch(/^(\/usr\/bin\/sudo )?\/bin\/sh -c '/);
    expect(cmd).toContain('/usr/bin/apt-get update');
    expect(cmd).toMatch(/\/usr\/bin\/apt-get install -y --no-install-recommends [^']*redis-server/);
    expect(cmd).not.toMatch(/(^|[ ;'])(apt-get|sudo) /);
    expect(cmd).toContain('exit 101');
    expect(cmd).toContain('/usr/sbin/policy-rc.d');
    expect(cmd).toMatch(/rm -f \/usr\/sbin\/policy-rc.d/);
    // The quoted script is valid shell: sh unquotes it, then parses it (-n: without running it).
    const quoted = cmd.replace(/^(\/usr\/bin\/sudo )?\/bin\/sh -c /, '');
    const script = spawnSync('/bin/sh', ['-c', `printf '%s' ${quoted}`], { encoding: 'utf8' }).stdout;
    expect(script).toMatch(/^set -e; if \[ -e \/usr\/sbin\/policy-rc.d \]/);
    const check = spawnSync('/bin/sh', ['-n', '-c', script], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });
});
