import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Browser tests wait on live data; give them room.
    slowTestThreshold: 10_000,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start their own redis-server processes on free ports; two files at once
    // is what a 2-core machine runs without timing noise.
    maxWorkers: 2,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
