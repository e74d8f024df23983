/** Every streaming venue's harness: the source conformance suite (`sources.test.ts`) runs against each. */
import { binance } from './binance.js';
import { bybit } from './bybit.js';
import { okx } from './okx.js';
import type { VenueHarness } from './venue-harness.js';

export const HARNESSES: readonly VenueHarness[] = [binance, bybit, okx];
