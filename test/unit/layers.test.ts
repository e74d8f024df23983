/**
 * The layer rules that `npm run lint` enforces (.dependency-cruiser.cjs, scripts/layers.cjs), run with
 * the real dependency-cruiser command on small trees: a clean one passes, an upward import and a cycle
 * between folders fail, naming the rule and the files.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const made: string[] = [];

/** A tree with the given files (path → source) and a tsconfig like the project's. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mb-layers-'));
  made.push(dir);
  const all: Record<string, string> = {
    'tsconfig.json': JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' },
    }),
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

function check(dir: string): { status: number | null; out: string } {
  const r = spawnSync(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'err'], {
    cwd: dir,
    encoding: 'utf8',
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const base = {
  'src/util/sleep.ts': 'export const sleep = (ms: number): number => ms;\n',
  'src/bus/producer.ts':
    "import { sleep } from '../util/sleep.js';\nexport const publish = (): number => sleep(1);\n",
  'src/app/feed.ts':
    "import { publish } from '../bus/producer.js';\nexport const startFeed = (): number => publish();\n",
};

afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('layer rules', () => {
  it('pass on a tree whose imports run downwards', () => {
    const r = check(tree(base));
    expect(r.out).not.toMatch(/error/);
    expect(r.status).toBe(0);
  });

  it('fail on an import against the layer order (bus importing app)', () => {
    const r = check(
      tree({
        ...base,
        'src/bus/consumer.ts': "import { startFeed } from '../app/feed.js';\nexport const c = startFeed;\n",
      }),
    );
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/layer-bus: src\/bus\/consumer\.ts → src\/app\/feed\.ts/);
  });

  it('fail on a cycle between folders', () => {
    const r = check(
      tree({
        ...base,
        'src/strategy/engine.ts':
          "import { serve } from '../commands/server.js';\nexport const run = serve;\n",
        'src/commands/server.ts':
          "import type { run } from '../strategy/engine.js';\nexport const serve = (r?: typeof run): unknown => r;\n",
      }),
    );
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/no-circular: src\/(strategy\/engine|commands\/server)\.ts/);
    expect(r.out).toMatch(/layer-commands: src\/commands\/server\.ts → src\/strategy\/engine\.ts/);
  });

  it('fail on a file outside the layer folders', () => {
    const r = check(tree({ ...base, 'src/helpers/x.ts': "export { sleep } from '../util/sleep.js';\n" }));
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/no-unknown-folder: src\/helpers\/x\.ts/);
  });
});
