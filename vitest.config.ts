import { defineConfig } from 'vitest/config';

/**
 * The integration suites of the core, the feed, history subscriptions, the runner, service commands
 * and the API (auth, health, strategies, live relay), run a second time against a local Redis Cluster.
 */
const CLUSTER_SUITES = [
  'test/integration/consumer.test.ts',
  'test/integration/consumer-faults.test.ts',
  'test/integration/producer-health.test.ts',
  'test/integration/monotonic-lease.test.ts',
  'test/integration/bus-health.test.ts',
  'test/integration/feed.test.ts',
  'test/integration/feed-binance.test.ts',
  'test/integration/runner.test.ts',
  'test/integration/api-live.test.ts',
  'test/integration/subscription.test.ts',
  'test/integration/jobs-commands.test.ts',
  'test/integration/api-auth.test.ts',
  'test/integration/api-health.test.ts',
  'test/integration/api-strategies.test.ts',
];

const shared = {
  // Browser tests wait on live data; give them room.
  slowTestThreshold: 10_000,
  testTimeout: 60_000,
  hookTimeout: 60_000,
  globalSetup: ['test/helpers/global-setup.ts'],
};

export default defineConfig({
  test: {
    // Integration tests start their own redis-server processes on free ports; two files at once
    // is what a 2-core machine runs without timing noise.
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: 'standalone', include: ['test/**/*.test.ts'] } },
      {
        test: {
          ...shared,
          name: 'cluster',
          include: CLUSTER_SUITES,
          env: { MARKETBUS_TEST_REDIS: 'cluster' },
        },
      },
    ],
  },
});
