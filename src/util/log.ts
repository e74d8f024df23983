import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Logs are JSON lines on stderr (stdout is kept for command output such as `streams tail`).
 * Level from `LOG_LEVEL` (default `info`; tests default to `warn`).
 */
export function createLogger(name: string, level?: string): Logger {
  const lvl = level ?? process.env['LOG_LEVEL'] ?? (process.env['VITEST'] ? 'warn' : 'info');
  return pino({ name, level: lvl, base: { svc: name } }, pino.destination(2));
}

/** A logger that drops everything, for library use without logging. */
export const silentLogger: Logger = pino({ level: 'silent' });
