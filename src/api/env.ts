/** Readers of API settings from the environment: each bad value is a ConfigError naming its key. */
import { ConfigError } from '../util/errors.js';

/** A positive integer, or `fallback` when unset or blank. */
export function positiveInt(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(key, `expected a positive integer, got ${raw}`);
  return n;
}

/** The trimmed value, or undefined when unset or blank. */
export function nonEmpty(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key]?.trim();
  return v ? v : undefined;
}
