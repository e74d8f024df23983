/**
 * The strategy definition (the payload of docs/contracts.md §14.2) and its validation. Everything that
 * can be wrong with a strategy is found here, at creation: `parseStrategySpec` throws
 * `StrategyInvalidError` naming the field (`signal_template`, `indicators.0.params.slow`,
 * `instrument_id.symbol`, ...); a parsed `StrategySpec` never fails at run time.
 *
 * Payload (snake_case, unknown fields rejected):
 *
 *     { "name"?: string,                               // default "<template> <instrument_key> <timeframe>"
 *       "instrument_id": { "market_id": int >= 0, "symbol": string },   // symbol = the key's symbol
 *       "instrument_key": "binance:spot:BTCUSDT",      // validateInstrumentKey
 *       "market_type": "spot",                          // = the key's market type
 *       "timeframe": "1m" | "5m",
 *       "indicators": [{ "name": "MA", "params": { "fast": 20, "slow": 50 } }],
 *       "signal_template": "MA(20,50)",
 *       "params"?: { "initial_equity"?: number > 0 (10000), "position_size"?: number in (0, 1] (1) } }
 *
 * `indicators` must list exactly the template's indicator with the same parameters (RSI `lower` and
 * `upper` may be left out when they are the defaults 30 and 70): the engine computes only what the
 * template uses, so anything else listed would be silently ignored.
 */
import { z } from 'zod';
import { validateInstrumentKey, TIMEFRAMES, type Timeframe } from '../contracts/catalog.js';
import { errorMessage, StrategyInvalidError } from '../util/errors.js';
import { splitInstrumentKey } from '../contracts/catalog.js';
import {
  formatSignalTemplate,
  INDICATOR_PARAMS,
  isIndicatorName,
  isParamProblem,
  parseSignalTemplate,
  templateFromParams,
  templateParams,
  type IndicatorName,
  type SignalTemplate,
} from './template.js';

/** A validated strategy. Immutable; `template` is what the engine runs. */
export interface StrategySpec {
  readonly name: string;
  readonly instrumentId: { readonly marketId: number; readonly symbol: string };
  readonly instrumentKey: string;
  readonly marketType: string;
  readonly timeframe: Timeframe;
  /** The listed indicator(s), parameters completed with defaults. */
  readonly indicators: readonly {
    readonly name: IndicatorName;
    readonly params: Readonly<Record<string, number>>;
  }[];
  /** The canonical template text, e.g. `MA(20,50)` (no spaces, every parameter written). */
  readonly signalTemplate: string;
  readonly template: SignalTemplate;
  /** Paper trading: starting equity, and the fraction of equity put into each long. */
  readonly params: { readonly initialEquity: number; readonly positionSize: number };
}

export const DEFAULT_INITIAL_EQUITY = 10_000;
export const DEFAULT_POSITION_SIZE = 1;

const Payload = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  instrument_id: z.strictObject({
    market_id: z.number().int().min(0),
    symbol: z.string().min(1).max(64),
  }),
  instrument_key: z.string(),
  market_type: z.string().min(1).max(32),
  timeframe: z.enum(TIMEFRAMES),
  indicators: z
    .array(z.strictObject({ name: z.string(), params: z.record(z.string(), z.number()) }))
    .min(1)
    .max(10),
  signal_template: z.string().min(1),
  params: z
    .strictObject({
      initial_equity: z.number().positive().max(1e15).default(DEFAULT_INITIAL_EQUITY),
      position_size: z.number().gt(0).max(1).default(DEFAULT_POSITION_SIZE),
    })
    .default({ initial_equity: DEFAULT_INITIAL_EQUITY, position_size: DEFAULT_POSITION_SIZE }),
});

type Payload = z.output<typeof Payload>;

/** Validate a strategy payload; throws `StrategyInvalidError` naming the first offending field. */
export function parseStrategySpec(json: unknown): StrategySpec {
  const r = Payload.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = (issue?.path ?? []).map(String);
    if (issue?.code === 'unrecognized_keys') path.push(issue.keys[0] ?? '');
    throw new StrategyInvalidError(path.join('.') || '(root)', issue?.message ?? 'invalid');
  }
  const p = r.data;
  checkInstrument(p);
  const template = parseSignalTemplate(p.signal_template);
  const signalTemplate = formatSignalTemplate(template);
  return {
    name: p.name ?? `${signalTemplate} ${p.instrument_key} ${p.timeframe}`,
    instrumentId: { marketId: p.instrument_id.market_id, symbol: p.instrument_id.symbol },
    instrumentKey: p.instrument_key,
    marketType: p.market_type,
    timeframe: p.timeframe,
    indicators: checkIndicators(p.indicators, template),
    signalTemplate,
    template,
    params: { initialEquity: p.params.initial_equity, positionSize: p.params.position_size },
  };
}

/** The payload of a spec (snake_case, as accepted by `parseStrategySpec`), for storage and APIs. */
export function strategySpecToPayload(spec: StrategySpec): Record<string, unknown> {
  return {
    name: spec.name,
    instrument_id: { market_id: spec.instrumentId.marketId, symbol: spec.instrumentId.symbol },
    instrument_key: spec.instrumentKey,
    market_type: spec.marketType,
    timeframe: spec.timeframe,
    indicators: spec.indicators.map((i) => ({ name: i.name, params: { ...i.params } })),
    signal_template: spec.signalTemplate,
    params: { initial_equity: spec.params.initialEquity, position_size: spec.params.positionSize },
  };
}

function checkInstrument(p: Payload): void {
  try {
    validateInstrumentKey(p.instrument_key);
  } catch (err) {
    throw new StrategyInvalidError('instrument_key', errorMessage(err), { cause: err });
  }
  const { marketType, symbol } = splitInstrumentKey(p.instrument_key);
  if (symbol !== p.instrument_id.symbol) {
    throw new StrategyInvalidError(
      'instrument_id.symbol',
      `${JSON.stringify(p.instrument_id.symbol)} does not match the symbol of instrument_key (${JSON.stringify(symbol)})`,
    );
  }
  if (marketType !== p.market_type) {
    throw new StrategyInvalidError(
      'market_type',
      `${JSON.stringify(p.market_type)} does not match the market type of instrument_key (${JSON.stringify(marketType)})`,
    );
  }
}

function checkIndicators(list: Payload['indicators'], template: SignalTemplate): StrategySpec['indicators'] {
  const want = templateParams(template);
  const text = formatSignalTemplate(template);
  return list.map((entry, n) => {
    const at = `indicators.${n}`;
    if (!isIndicatorName(entry.name)) {
      throw new StrategyInvalidError(
        `${at}.name`,
        `unknown indicator ${JSON.stringify(entry.name)}; expected MA, EMA, RSI or BB`,
      );
    }
    const allowed = INDICATOR_PARAMS[entry.name];
    const unknown = Object.keys(entry.params).find((k) => !allowed.includes(k));
    if (unknown !== undefined) {
      throw new StrategyInvalidError(
        `${at}.params.${unknown}`,
        `${entry.name} has no parameter ${JSON.stringify(unknown)} (it has ${allowed.join(', ')})`,
      );
    }
    const built = templateFromParams(entry.name, entry.params);
    if (isParamProblem(built)) throw new StrategyInvalidError(`${at}.params.${built.param}`, built.problem);
    if (n > 0)
      throw new StrategyInvalidError(
        at,
        `only the indicator of signal_template (${text}) may be listed, once`,
      );
    if (built.kind !== template.kind) {
      throw new StrategyInvalidError(
        `${at}.name`,
        `${built.kind} is not the indicator of signal_template (${text})`,
      );
    }
    const got = templateParams(built);
    const differs = allowed.find((k) => got[k] !== want[k]);
    if (differs !== undefined) {
      throw new StrategyInvalidError(
        `${at}.params.${differs}`,
        `${got[differs]} does not match signal_template ${text} (${differs} ${want[differs]})`,
      );
    }
    return { name: built.kind, params: got };
  });
}
