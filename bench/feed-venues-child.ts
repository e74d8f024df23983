/**
 * The venues' side of `bench/feed-venues-bench.ts`, in a child process so that the fake servers' work
 * is not counted in the feed's CPU: the local fake server of each venue asked for (the ones the tests
 * use, speaking that venue's protocol on loopback), on an accelerated market clock shared with the
 * parent (`t0 + (Date.now() - realStart) * speed`). Every market minute it sends the closed 1m candle of
 * every instrument of every venue, and one top-of-book update each.
 *
 * Protocol (IPC, JSON):
 *   child -> parent  { type: 'ready', settings }   settings: venue -> `market_data.sources.<venue>`
 *   parent -> child  { type: 'stop' }              answered with { type: 'stopped', closes, quotes }, then exit
 *   child -> parent  { type: 'failed', error }     (`ChildFailed`)
 */
import { splitInstrumentKey } from '../src/contracts/catalog.js';
import { sendToParent, type ChildFailed } from '../src/bench/child-channel.js';
import { errorMessage } from '../src/util/errors.js';
import { FakeBinance, MINUTE } from '../test/helpers/fake-binance.js';
import { FakeBybit } from '../test/helpers/fake-bybit.js';
import { FakeOkx } from '../test/helpers/fake-okx.js';

export interface VenuesChildConfig {
  /** Instrument keys per venue. */
  readonly keys: Readonly<Record<string, readonly string[]>>;
  /** Market time at `realStart`, epoch ms, minute-aligned. */
  readonly t0: number;
  /** Real time the market clock starts from, epoch ms. */
  readonly realStart: number;
  /** Market ms per real ms. */
  readonly speed: number;
}

export type ToVenuesChild = { readonly type: 'stop' };
export type FromVenuesChild =
  | { readonly type: 'ready'; readonly settings: Readonly<Record<string, Record<string, string>>> }
  | { readonly type: 'stopped'; readonly closes: number; readonly quotes: number }
  | ChildFailed;

/** One venue's local server, as the bench drives it. */
interface FakeVenue {
  readonly settings: Record<string, string>;
  pushClose(key: string, openTime: number): void;
  pushQuote(key: string, bid: string, ask: string): void;
  close(): Promise<void>;
}

/** A message to the parent, checked against the protocol. */
const tell = (m: FromVenuesChild): Promise<void> => sendToParent(m);

type FakeStarter = (now: () => number, keys: readonly string[]) => Promise<FakeVenue>;

const symbolOf = (key: string): string => splitInstrumentKey(key).symbol;

/** Each venue's fake server listing the bench's instruments (spot keys only). */
const FAKES: Readonly<Record<string, FakeStarter>> = {
  binance: async (now, keys) => {
    const f = await FakeBinance.start({ now, listed: keys.map(symbolOf) });
    return {
      settings: { ws_url: f.wsUrl, rest_url: f.restUrl },
      pushClose: (key, t) => void f.pushKline(symbolOf(key), t),
      pushQuote: (key, bid, ask) => void f.pushBookTicker(symbolOf(key), bid, ask),
      close: () => f.close(),
    };
  },
  bybit: async (now, keys) => {
    const f = await FakeBybit.start({ now });
    for (const k of keys) f.list('spot', symbolOf(k));
    return {
      settings: { ws_url: f.wsUrl, rest_url: f.restUrl },
      pushClose: (key, t) => void f.pushKline('spot', symbolOf(key), t, true),
      pushQuote: (key, bid, ask) => void f.pushBook('spot', symbolOf(key), bid, ask),
      close: () => f.close(),
    };
  },
  okx: async (now, keys) => {
    const f = await FakeOkx.start({ now, listed: keys });
    return {
      settings: { ...f.settings },
      pushClose: (key, t) => void f.pushClose(key, t),
      pushQuote: (key, bid, ask) => void f.pushQuote(key, bid, ask),
      close: () => f.close(),
    };
  },
};

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as VenuesChildConfig;
  const now = (): number => cfg.t0 + (Date.now() - cfg.realStart) * cfg.speed;
  const venues: [FakeVenue, readonly string[]][] = [];
  const settings: Record<string, Record<string, string>> = {};
  for (const [venue, keys] of Object.entries(cfg.keys)) {
    const start = FAKES[venue];
    if (!start) throw new Error(`no fake server for venue ${venue}`);
    const fake = await start(now, keys);
    venues.push([fake, keys]);
    settings[venue] = fake.settings;
  }
  let stop = false;
  process.on('message', (m: ToVenuesChild) => {
    if (m.type === 'stop') stop = true;
  });
  process.on('disconnect', () => process.exit(0));
  await tell({ type: 'ready', settings });
  let closes = 0;
  let quotes = 0;
  let next = cfg.t0; // the next minute whose close is due
  while (!stop) {
    const open = Math.floor(now() / MINUTE) * MINUTE;
    for (; next < open && !stop; next += MINUTE) {
      for (const [fake, keys] of venues) {
        for (const key of keys) {
          fake.pushClose(key, next);
          fake.pushQuote(key, '100.10', '100.20');
        }
        closes += keys.length;
        quotes += keys.length;
      }
      // Let the sockets write between minutes, as a real venue's frames are spread out.
      await new Promise<void>((r) => setImmediate(r));
    }
    await new Promise<void>((r) => setTimeout(r, 5));
  }
  for (const [fake] of venues) await fake.close();
  await tell({ type: 'stopped', closes, quotes });
  process.exit(0);
}

main().catch(async (err: unknown) => {
  await tell({ type: 'failed', error: errorMessage(err) });
  process.exit(1);
});
