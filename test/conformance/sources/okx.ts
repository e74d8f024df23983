/**
 * The OKX harness of the source conformance suite: the local OKX v5 fake (`test/helpers/fake-okx.ts`)
 * and the OKX source the feed builds against it, for `okx:spot:BTC-USDT` and `okx:swap:BTC-USDT-SWAP`.
 */
import { OKX_LIMITS } from '../../../src/marketdata/sources/okx/adapter.js';
import { createOkxSource } from '../../../src/marketdata/sources/okx/source.js';
import { FakeOkx } from '../../helpers/fake-okx.js';
import type { ConformanceTimings, FakeVenueServer, SourceUnderTest, VenueHarness } from './venue-harness.js';

/**
 * A live market's traffic (an open-candle push on every candle subscription, a ticker on every tickers
 * one) this often, real ms: OKX pushes candles up to once a second. Fast enough that no socket looks
 * silent to the suite's 1.5 s silence timeout; not faster, since 600 instruments of it share the CPU with
 * the source under test.
 */
const UPDATE_EVERY_MS = 500;
/** History calls the source may make per minute: OKX's own budget (40 `candles` calls per 2 s). */
const HISTORY_CALLS_PER_MIN = (OKX_LIMITS.rest[0]?.count ?? 40) * 30;

function server(fake: FakeOkx, now: () => number): FakeVenueServer {
  return Object.assign(fake, {
    createSource(keys: readonly string[], timings: ConformanceTimings): SourceUnderTest {
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

/** Most keys `manyKeys` gives; the fake lists them all from the start. */
const MANY_MAX = 2000;
const KEYS = ['okx:spot:BTC-USDT', 'okx:swap:BTC-USDT-SWAP'];

function manyKeys(n: number): readonly string[] {
  if (n > MANY_MAX) throw new Error(`the okx harness lists ${MANY_MAX} instruments at most`);
  return Array.from({ length: n }, (_, i) => `okx:spot:C${String(i).padStart(4, '0')}-USDT`);
}

export const okx: VenueHarness = {
  venue: 'okx',
  capabilities: { candles: 'closed-flag', serverNotice: true, symbolList: true, marketHours: false },
  keys: KEYS,
  manyKeys,
  start: async (now) =>
    server(
      await FakeOkx.start({ now, openUpdateMs: UPDATE_EVERY_MS, listed: [...KEYS, ...manyKeys(MANY_MAX)] }),
      now,
    ),
};
