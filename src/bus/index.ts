/** The reusable Redis Streams core. It knows nothing of markets. */
export * from '../util/backoff.js';
export * from '../contracts/catalog.js';
export * from './codec.js';
export * from './connection.js';
export * from './consumer.js';
export * from './dead-letter.js';
export * from './groups.js';
export * from './health.js';
export * from './metrics.js';
export * from './producer.js';
export * from './redis-errors.js';
export * from './redis-server.js';
export * from './replies.js';
export * from './stream-id.js';
