/**
 * Configuration: one YAML file (optional), environment overrides, validation with zod. Every problem
 * is a ConfigError naming the dotted key, e.g. `config redis.port: expected number, received string`.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError, errorMessage } from '../util/errors.js';
import type { Retention } from '../bus/stream-policy.js';
import { redisSectionSchema } from './redis.js';

const kinds = [
  'candles',
  'prices',
  'feed-status',
  'strategy-events',
  'strategy-metrics',
  'service-commands',
  'service-results',
  'service-status',
  'dead-letters',
] as const;

/** One catalog kind's retention: an approximate length or an age in seconds. */
const retentionSchema = z
  .union([
    z.object({ maxlen: z.number().int().positive() }).strict(),
    z.object({ max_age_s: z.number().positive() }).strict(),
  ])
  .transform((r): Retention =>
    'maxlen' in r ? { kind: 'maxlen', maxLen: r.maxlen } : { kind: 'maxage', maxAgeMs: r.max_age_s * 1000 },
  );

export const configSchema = z
  .object({
    redis: redisSectionSchema.optional(),
    /** Retention per catalog kind (docs/contracts.md §13), e.g. `strategy-events: { max_age_s: 604800 }`. */
    streams: z
      .object({ retention: z.partialRecord(z.enum(kinds), retentionSchema).default({}) })
      .strict()
      .prefault({}),
    /** Where embedded state lives (redis-server data, PGlite). */
    data_dir: z.string().min(1).default('.marketbus'),
  })
  .loose(); // sections of other services are validated by those services

export type MarketbusConfig = z.infer<typeof configSchema>;

/** Parse and validate a config object; the first problem becomes a ConfigError naming its key. */
export function validateConfig<S extends z.ZodType>(schema: S, raw: unknown, prefix = ''): z.infer<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = [prefix, ...(issue?.path ?? []).map(String)].filter(Boolean).join('.');
  throw new ConfigError(path || '(root)', issue?.message ?? 'invalid');
}

/** Read a YAML file into a plain object; syntax errors name the line. */
export function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${file}: ${errorMessage(err)}`);
  }
  const doc = parseDocument(text);
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0]?.line;
    throw new ConfigError(
      '(file)',
      `${file}${line ? `:${line}` : ''}: ${first.message.split('\n')[0] ?? 'invalid YAML'}`,
    );
  }
  return doc.toJS() ?? {};
}

/** Load the config file (if any) and validate the common sections. */
export function loadConfig(file: string | undefined): MarketbusConfig {
  const raw = file ? readYaml(file) : {};
  return validateConfig(configSchema, raw);
}
