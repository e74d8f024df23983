import { Command, InvalidArgumentError } from 'commander';
import { checkDevLogin } from '../../api/auth/settings.js';
import { apiSettingsFromEnv, type ApiSettings } from '../../api/config.js';
import { DEFAULT_API_PORT } from '../../api/server.js';
import { openRelationalDb } from '../../app/open-db.js';
import { runServices } from '../../app/stack.js';
import { startApi } from '../../app/start-api.js';
import type { Logger } from '../../util/log.js';
import { serviceContext, untilSignal } from '../context.js';

/** `--port`: 0..65535 (0 = any free port). */
export function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError('--port must be an integer from 0 to 65535 (0 = any free port).');
  return n;
}

/**
 * Development sign-in as the command line asks: `--dev-login` turns it on (a ConfigError in
 * production); `marketbus up` (`auto`) also turns it on by itself when no bot token is set, saying so.
 */
export function devLoginSettings(
  settings: ApiSettings,
  flag: boolean,
  log: Logger,
  auto = true,
): ApiSettings {
  if (flag) checkDevLogin(settings.production, '--dev-login');
  if (flag || settings.devLogin) return { ...settings, devLogin: true };
  if (auto && !settings.production && settings.botToken === undefined) {
    log.warn('no TELEGRAM_BOT_TOKEN: development sign-in is on (a one-time link is printed below)');
    return { ...settings, devLogin: true };
  }
  return settings;
}

/** The start banner's sign-in line (stderr, like the banner: never in the structured logs). */
export function announceDevLogin(url: string | null, settings: ApiSettings): void {
  if (url !== null)
    process.stderr.write(`development sign-in: open ${url} (works once, for ${settings.devLoginTtlS} s)\n`);
}

/**
 * `marketbus api`: the HTTP API, the live WebSocket relay and the dashboard, alone (the feed and the
 * runner run elsewhere). The database is `DATABASE_URL`, else the embedded PGlite under `data_dir`
 * (which a running `marketbus up` holds: use PostgreSQL to run both).
 */
export function apiCommand(): Command {
  return new Command('api')
    .description('run the HTTP API, the live WebSocket relay (/api/v1/live/ws) and the dashboard')
    .option('--port <port>', 'HTTP port (0 = any free port)', parsePort, DEFAULT_API_PORT)
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option(
      '--dev-login',
      'development sign-in: print a one-time sign-in link at start (refused in production)',
    )
    .action(async (o: { port: number; host: string; devLogin?: boolean }, c: Command) => {
      const { config, log, target, registry } = serviceContext(c, 'api');
      // production without its secrets stops here
      const settings = devLoginSettings(apiSettingsFromEnv(), o.devLogin === true, log, false);
      // Listened to from the start: a signal during the start stops right after it.
      const signal = untilSignal();
      await runServices(
        async (stack) => {
          // Only the relational database: the API reads no candle history.
          const db = openRelationalDb(
            { databaseUrl: process.env['DATABASE_URL'] || undefined, dataDir: config.data_dir },
            log,
          );
          stack.defer('database', () => db.close());
          await db.migrate();
          const api = stack.use(
            await startApi({
              redis: target.options,
              db: db.sql,
              log,
              registry,
              host: o.host,
              port: o.port,
              settings,
            }),
            'api',
          );
          announceDevLogin(api.devLoginUrl, settings);
          process.stderr.write(`marketbus api on ${api.url} (db ${db.kind}). Ctrl+C stops.\n`);
        },
        async () => log.info({ signal: await signal }, 'stopping'),
      );
    });
}
