/** Service commands (registry, serving, requesting, status) and backtests. */
export * from './backtest-driver.js';
export * from './backtest-events.js';
export * from './backtest-queue.js';
export * from './backtest-result.js';
export * from './backtest-store.js';
export * from './backtest-worker.js';
export * from './backtester.js';
export * from './backtests.js';
export * from './client.js';
export * from './registry.js';
export * from './reply-once.js';
export * from './server.js';
export * from './services.js';
export * from './status.js';
export * from './wire.js';
