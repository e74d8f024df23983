import { findExecutable } from '../../src/bus/redis-server.js';

/**
 * The suite runs against real redis-server processes: say clearly when there is none.
 * @public vitest's `globalSetup` (vitest.config.ts)
 */
export default function setup(): void {
  if (!findExecutable('redis-server')) {
    throw new Error(
      'redis-server is not installed. Run `npm test` (it installs it) or: sudo apt-get install -y redis-server',
    );
  }
}
