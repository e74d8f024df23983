/**
 * Memory and CPU of processes from Linux's /proc: resident set size (`VmRSS` of /proc/<pid>/status),
 * proportional set size (`Pss` of /proc/<pid>/smaps_rollup, for a process tree such as PostgreSQL's
 * postmaster and backends, whose shared buffers VmRSS would count once per backend) and CPU time
 * (utime + stime of /proc/<pid>/stat). Every reader returns null when the process is gone.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const KIB = 1024;
const MIB = 1024 * 1024;

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The value of a `Key:   1234 kB` line, in bytes; null when absent. */
function kbLine(text: string, key: string): number | null {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m?.[1] === undefined ? null : Number(m[1]) * KIB;
}

/** Resident set size of `pid`, MiB (VmRSS); null when the process is gone. */
export function rssMiB(pid: number): number | null {
  const status = readText(`/proc/${pid}/status`);
  const bytes = status === null ? null : kbLine(status, 'VmRSS');
  return bytes === null ? null : bytes / MIB;
}

/** Proportional set size of `pid`, MiB; null when the process is gone or the file is unreadable. */
export function pssMiB(pid: number): number | null {
  const rollup = readText(`/proc/${pid}/smaps_rollup`);
  const bytes = rollup === null ? null : kbLine(rollup, 'Pss');
  return bytes === null ? null : bytes / MIB;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces and parentheses). */
function statFields(pid: number): string[] | null {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const close = stat.lastIndexOf(')');
  return stat.slice(close + 2).split(' ');
}

let clockTicks: number | undefined;

/** Clock ticks per second of /proc CPU times (`getconf CLK_TCK`, 100 on every Linux we run on). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU time (user + system) `pid` has used, seconds; null when the process is gone. */
export function cpuSeconds(pid: number): number | null {
  const f = statFields(pid);
  if (f === null) return null;
  // After the name: state(0) ppid(1) ... utime(11) stime(12), i.e. fields 14 and 15 of stat(5).
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / ticksPerSecond() : null;
}

/** `pid` and every live descendant of it (one scan of /proc). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [pid];
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    const ppid = f === null ? NaN : Number(f[1]);
    if (!Number.isFinite(ppid)) continue;
    const list = children.get(ppid);
    if (list) list.push(Number(name));
    else children.set(ppid, [Number(name)]);
  }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop() as number;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** PSS summed over a process tree, MiB (shared pages counted once); null when the root is gone. */
export function treePssMiB(pid: number): number | null {
  if (pssMiB(pid) === null) return null;
  let sum = 0;
  for (const p of processTree(pid)) sum += pssMiB(p) ?? 0;
  return sum;
}

/** CPU seconds summed over a process tree; null when the root is gone. */
export function treeCpuSeconds(pid: number): number | null {
  if (cpuSeconds(pid) === null) return null;
  let sum = 0;
  for (const p of processTree(pid)) sum += cpuSeconds(p) ?? 0;
  return sum;
}

/**
 * True while `pid` runs. A zombie (exited, not yet reaped: a daemon such as the postmaster is reaped by
 * whatever init the machine has, sometimes late) counts as gone.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return statFields(pid)?.[0] !== 'Z';
}
