/** Errors of `marketbus bench` (codes in src/util/errors.ts). */
import { MarketbusError } from '../util/errors.js';

/** A benchmark run broke one of its own checks: entries left over, a latency worker misbehaved. */
export class BenchFailedError extends MarketbusError {
  constructor(message: string) {
    super('BENCH_FAILED', message);
  }
}
