/** The venues the source conformance suite runs against, one harness each. */
import { bybit } from './bybit.js';
import type { VenueHarness } from './venue-harness.js';

export const HARNESSES: readonly VenueHarness[] = [bybit];
