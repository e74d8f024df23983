export { createClickHouseStore, type ClickHouseStoreOptions } from './store.js';
export { parseClickHouseUrl } from './http.js';
export { CANDLES_TABLE, MIGRATIONS_TABLE, MIGRATIONS } from './migrations.js';
