/** Binance values -> the normalized Candle and Tick of `marketdata/types.ts`. */
import type { Candle, CandleOrigin, Tick } from '../../../contracts/candle.js';
import { TIMEFRAME_MS } from '../../../contracts/candle.js';
import type { KlineValues } from './messages.js';
import type { BinanceInstrument } from './options.js';

/** A closed 1m kline as a candle; `tsClose` is open + 60 s (not Binance's open + 59999). */
export function toCandle(instrument: BinanceInstrument, k: KlineValues, origin: CandleOrigin): Candle {
  return {
    instrumentKey: instrument.spec.instrumentKey,
    symbol: instrument.symbol,
    marketId: instrument.spec.marketId,
    timeframe: '1m',
    tsOpen: k.openTime,
    tsClose: k.openTime + TIMEFRAME_MS['1m'],
    open: k.open,
    high: k.high,
    low: k.low,
    close: k.close,
    volumeBase: k.volume,
    volumeQuote: k.quoteVolume,
    origin,
  };
}

export function toTick(
  instrument: BinanceInstrument,
  bid: number,
  ask: number,
  exchangeTsMs: number | null,
  receivedAt: number,
): Tick {
  return {
    instrumentKey: instrument.spec.instrumentKey,
    symbol: instrument.symbol,
    bid,
    ask,
    tsMs: exchangeTsMs ?? receivedAt,
  };
}
