/**
 * The symbol check at start: when the adapter can list the venue's symbols, one call per market present
 * (under the REST budget) says which instruments exist there. An instrument not listed is refused with a
 * `rejected` notice naming its config key (`market_data.instruments[<index>]`) and is not subscribed;
 * the others go on. When a list cannot be had (network trouble past a few attempts, a reply that will
 * not get better), it is logged and every instrument of that market is served: a venue's bad minute
 * never blocks the start for ever.
 */
import type { Logger } from '../../util/log.js';
import type { SourceNotice } from '../types.js';
import type { RestCaller } from './rest-caller.js';
import type { VenueInstrument, VenueSymbols } from './venue.js';

/** Answers a symbol list gets before the market is served unchecked. */
export const SYMBOL_LIST_ATTEMPTS = 3;

/** The `rejected` notice of an instrument; `index` is its place in the configured instrument list. */
export function rejectedNotice(
  instrument: VenueInstrument,
  index: number,
  reason: string,
): Extract<SourceNotice, { kind: 'rejected' }> {
  return {
    kind: 'rejected',
    instrumentKey: instrument.spec.instrumentKey,
    configKey: `market_data.instruments[${index}]`,
    reason,
  };
}

export interface SymbolCheck<I extends VenueInstrument> {
  /** Instruments to serve, in the configured order. */
  readonly accepted: readonly I[];
  /** One per instrument refused. */
  readonly rejected: readonly Extract<SourceNotice, { kind: 'rejected' }>[];
}

/**
 * Check `instruments` against the venue's lists. Resolves with everything accepted when the signal
 * aborts first.
 */
export async function checkSymbols<I extends VenueInstrument, U>(
  venue: string,
  symbols: VenueSymbols<U>,
  urls: U,
  instruments: readonly I[],
  caller: RestCaller,
  logger: Logger,
  signal: AbortSignal,
): Promise<SymbolCheck<I>> {
  const markets = [...new Set(instruments.map((i) => i.market))];
  const listed = new Map<string, ReadonlySet<string> | null>();
  for (const market of markets) {
    const req = symbols.request(market, urls);
    const out = await caller.call<ReadonlySet<string>>(req, (r) => symbols.parse(r), signal, {
      maxAttempts: SYMBOL_LIST_ATTEMPTS,
    });
    if (out.kind === 'aborted') return { accepted: instruments, rejected: [] };
    if (out.kind === 'ok') {
      listed.set(market, out.value);
    } else {
      logger.warn(
        { source: venue, market, reason: out.reason },
        `${venue} symbol list unavailable: serving every ${market} instrument unchecked`,
      );
      listed.set(market, null);
    }
  }
  const accepted: I[] = [];
  const rejected: Extract<SourceNotice, { kind: 'rejected' }>[] = [];
  instruments.forEach((i, index) => {
    const list = listed.get(i.market);
    if (list && !list.has(i.symbol)) {
      rejected.push(rejectedNotice(i, index, `${venue} does not list ${i.market} symbol ${i.symbol}`));
    } else {
      accepted.push(i);
    }
  });
  return { accepted, rejected };
}
