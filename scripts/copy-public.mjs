#!/usr/bin/env node
// Copies the dashboard (src/api/public) into the build output (dist/api/public), which tsc does not
// do, so the npm package (`"files": ["dist"]`) carries the page. Run by `npm run build`, by
// scripts/setup.mjs after tsc, and so by `npm pack` (prepack). Plain Node, no dependency.
import { cpSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const from = `${root}src/api/public`;
const to = `${root}dist/api/public`;
// Replaced whole: a file removed from the page must not linger in the package.
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
