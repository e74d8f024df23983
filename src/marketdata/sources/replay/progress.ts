/**
 * A progress display for `replay` (`ReplaySourceOptions.onProgress`): a cli-progress bar on stderr when
 * stderr is a terminal, otherwise one log line per 10 % (logs are JSON lines on stderr; stdout stays
 * for command output).
 */
import cliProgress from 'cli-progress';
import { createLogger } from '../../../util/log.js';

/** `onProgress` plus `stop()`, which ends the bar (and its redraw timer) early, e.g. after an abort. */
export interface ProgressHandle {
  (done: number, total: number): void;
  stop(): void;
}

export interface ProgressBarOptions {
  /**
   * Where the bar goes.
   * @defaultValue `process.stderr` (looked up at each call)
   */
  readonly stream?: NodeJS.WritableStream & { readonly isTTY?: boolean };
  /**
   * Receives the 10 % lines when the stream is not a terminal.
   * @defaultValue a new `replay` logger
   */
  readonly log?: (
    fields: { label: string; percent: number; done: number; total: number },
    msg: string,
  ) => void;
}

function mb(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}

type LogFn = NonNullable<ProgressBarOptions['log']>;

function defaultLog(): LogFn {
  const logger = createLogger('replay');
  return (fields, msg) => logger.info(fields, msg);
}

/** A progress function for `label` (e.g. the file name); the bar stops by itself at 100 %. */
export function progressBar(label: string, opts: ProgressBarOptions = {}): ProgressHandle {
  const stream = opts.stream ?? process.stderr;
  let stopped = false;

  if (stream.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} [{bar}] {percentage}% | {doneMb}/{totalMb} MB | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    const stop = (): void => {
      if (stopped || !started) return;
      stopped = true;
      bar.stop();
    };
    const onProgress = (done: number, total: number): void => {
      if (stopped) return;
      const payload = { doneMb: mb(done), totalMb: mb(total) };
      if (!started) {
        started = true;
        bar.start(Math.max(total, 1), done, payload);
      } else {
        bar.setTotal(Math.max(total, 1));
        bar.update(done, payload);
      }
      if (done >= total) stop();
    };
    return Object.assign(onProgress, { stop });
  }

  const log = opts.log ?? defaultLog();
  let lastDecile = -1;
  const onProgress = (done: number, total: number): void => {
    if (stopped) return;
    const percent = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    const decile = Math.floor(percent / 10);
    if (decile > lastDecile) {
      lastDecile = decile;
      log(
        { label, percent: decile * 10, done, total },
        `${label}: ${decile * 10}% (${mb(done)} of ${mb(total)} MB)`,
      );
    }
    if (done >= total) stopped = true;
  };
  return Object.assign(onProgress, {
    stop: (): void => {
      stopped = true;
    },
  });
}
