/**
 * The OKX harness of the source conformance suite: the local OKX v5 fake (`test/helpers/fake-okx.ts`)
 * and the OKX source the feed builds against it, for `okx:spot:BTC-USDT` and `okx:swap:BTC-USDT-SWAP`.
 */
import { OKX_LIMITS } from '../../../src/marketdata/sources/okx/adapter.js';
import { createOkxSource } from '../../../src/marketdata/sources/okx/source.js';
import { FakeOkx } from '../../helpers/fake-okx.js';
import type { ConformanceTimings, FakeVenueServer, SourceUnderTest, VenueHarness } from './venue-harness.js';

/** An open-candle push on every candle subscription this often, real ms (OKX: up to one a second). */
const UPDATE_EVERY_MS = 250;
/** History calls the source may make per minute: OKX's own budget (40 `candles` calls per 2 s). */
const HISTORY_CALLS_PER_MIN = (OKX_LIMITS.rest[0]?.count ?? 40) * 30;

function server(fake: FakeOkx, now: () => number): FakeVenueServer {
  return Object.assign(fake, {
    createSource(keys: readonly string[], timings: ConformanceTimings): SourceUnderTest {
      fake.list(keys);
      return createOkxSource({
        instruments: keys,
        wsUrl: fake.wsUrl,
        businessWsUrl: fake.businessWsUrl,
        restUrl: fake.restUrl,
        now,
        maxHistoryCallsPerMin: HISTORY_CALLS_PER_MIN,
        ...timings,
      });
    },
  });
}

export const okx: VenueHarness = {
  venue: 'okx',
  keys: ['okx:spot:BTC-USDT', 'okx:swap:BTC-USDT-SWAP'],
  manyKeys: (n) => Array.from({ length: n }, (_, i) => `okx:spot:C${String(i).padStart(4, '0')}-USDT`),
  start: async (now) => server(await FakeOkx.start({ now, openUpdateMs: UPDATE_EVERY_MS }), now),
};
