/**
 * `signal_template`: the one-line rule of a strategy, e.g. `MA(20,50)`.
 *
 * Grammar (whitespace allowed between any two tokens, names are case-sensitive):
 *
 *     template := NAME "(" number ("," number)* ")"
 *     NAME     := MA | EMA | RSI | BB
 *     number   := digits ("." digits)?
 *
 * | template               | rule                                                                   |
 * | ---------------------- | ---------------------------------------------------------------------- |
 * | `MA(fast,slow)`        | simple moving-average crossover                                        |
 * | `EMA(fast,slow)`       | exponential moving-average crossover                                   |
 * | `RSI(period[,lo,up])`  | buy when RSI crosses up through `lo`, sell when it crosses down through `up` (default 30, 70) |
 * | `BB(period,k)`         | Bollinger breakout: buy when close crosses above the upper band, sell below the lower band |
 *
 * Parameter rules (shared with the `indicators` entries of a strategy, see `templateFromParams`):
 * periods are integers 1..1000 (RSI and BB: 2..1000), fast < slow, lo < up integers in 0..100,
 * k a decimal in (0, 10]. Errors are `StrategyInvalidError` on field `signal_template` with the
 * 0-based character `position` of the problem.
 */
import { StrategyInvalidError } from '../util/errors.js';

export type SignalTemplate =
  | { readonly kind: 'MA'; readonly fast: number; readonly slow: number }
  | { readonly kind: 'EMA'; readonly fast: number; readonly slow: number }
  | { readonly kind: 'RSI'; readonly period: number; readonly lower: number; readonly upper: number }
  | { readonly kind: 'BB'; readonly period: number; readonly k: number };

export type IndicatorName = SignalTemplate['kind'];

/** Parameter names of each indicator, in template argument order. */
export const INDICATOR_PARAMS: Readonly<Record<IndicatorName, readonly string[]>> = {
  MA: ['fast', 'slow'],
  EMA: ['fast', 'slow'],
  RSI: ['period', 'lower', 'upper'],
  BB: ['period', 'k'],
};
export const MAX_PERIOD = 1000;
export const MAX_K = 10;
export const RSI_DEFAULT_LOWER = 30;
export const RSI_DEFAULT_UPPER = 70;
const MAX_TEMPLATE_LENGTH = 200;

export function isIndicatorName(name: string): name is IndicatorName {
  return Object.hasOwn(INDICATOR_PARAMS, name);
}

/** A parameter problem: which parameter, and what is wrong with it. */
export interface ParamProblem {
  readonly param: string;
  readonly problem: string;
}

type Params = Readonly<Record<string, number | undefined>>;

/**
 * Build a template from named parameters (RSI `lower`/`upper` may be omitted: 30/70). Returns the
 * template, or the first problem found. Unknown parameter names are the caller's business.
 */
export function templateFromParams(name: IndicatorName, p: Params): SignalTemplate | ParamProblem {
  const problem =
    name === 'RSI'
      ? (int(p, 'period', 2, MAX_PERIOD) ??
        int(p, 'lower', 0, 100, RSI_DEFAULT_LOWER) ??
        int(p, 'upper', 0, 100, RSI_DEFAULT_UPPER) ??
        less(p, 'lower', 'upper', RSI_DEFAULT_LOWER, RSI_DEFAULT_UPPER))
      : name === 'BB'
        ? (int(p, 'period', 2, MAX_PERIOD) ?? decimal(p, 'k'))
        : (int(p, 'fast', 1, MAX_PERIOD) ?? int(p, 'slow', 1, MAX_PERIOD) ?? less(p, 'fast', 'slow'));
  if (problem) return problem;
  const v = (k: string, dflt = 0): number => p[k] ?? dflt;
  switch (name) {
    case 'MA':
    case 'EMA':
      return { kind: name, fast: v('fast'), slow: v('slow') };
    case 'RSI':
      return {
        kind: name,
        period: v('period'),
        lower: v('lower', RSI_DEFAULT_LOWER),
        upper: v('upper', RSI_DEFAULT_UPPER),
      };
    case 'BB':
      return { kind: name, period: v('period'), k: v('k') };
  }
}

export function isParamProblem(x: SignalTemplate | ParamProblem): x is ParamProblem {
  return 'problem' in x;
}

function int(p: Params, key: string, min: number, max: number, dflt?: number): ParamProblem | null {
  const x = p[key] ?? dflt;
  if (x === undefined) return { param: key, problem: 'is required' };
  if (!Number.isInteger(x) || x < min || x > max) {
    return { param: key, problem: `must be an integer in ${min}..${max} (got ${x})` };
  }
  return null;
}

function decimal(p: Params, key: string): ParamProblem | null {
  const x = p[key];
  if (x === undefined) return { param: key, problem: 'is required' };
  if (!Number.isFinite(x) || x <= 0 || x > MAX_K) {
    return { param: key, problem: `must be a number greater than 0 and at most ${MAX_K} (got ${x})` };
  }
  return null;
}

function less(p: Params, a: string, b: string, da = 0, db = 0): ParamProblem | null {
  const x = p[a] ?? da;
  const y = p[b] ?? db;
  return x < y ? null : { param: a, problem: `must be less than ${b} (${y}) (got ${x})` };
}

/** The canonical text of a template: no spaces, every parameter written, e.g. `RSI(14,30,70)`. */
export function formatSignalTemplate(t: SignalTemplate): string {
  switch (t.kind) {
    case 'MA':
    case 'EMA':
      return `${t.kind}(${t.fast},${t.slow})`;
    case 'RSI':
      return `RSI(${t.period},${t.lower},${t.upper})`;
    case 'BB':
      return `BB(${t.period},${t.k})`;
  }
}

/** The named parameters of a template, e.g. `{ fast: 20, slow: 50 }`. */
export function templateParams(t: SignalTemplate): Record<string, number> {
  const { kind: _kind, ...params } = t;
  return params;
}

/** Parse `signal_template`; throws `StrategyInvalidError` (field `signal_template`, with `position`). */
export function parseSignalTemplate(text: string): SignalTemplate {
  if (text.length > MAX_TEMPLATE_LENGTH)
    fail(text, MAX_TEMPLATE_LENGTH, `is longer than ${MAX_TEMPLATE_LENGTH}`);
  let i = 0;
  const skip = (): void => {
    while (i < text.length && /\s/.test(text.charAt(i))) i++;
  };
  const expect = (ch: string): void => {
    skip();
    if (text.charAt(i) !== ch) fail(text, i, `expected "${ch}"`);
    i++;
  };
  skip();
  const nameAt = i;
  const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))?.[0];
  if (name === undefined) fail(text, i, 'expected an indicator name (MA, EMA, RSI or BB)');
  if (!isIndicatorName(name)) {
    const hint = isIndicatorName(name.toUpperCase()) ? ` (names are upper case: ${name.toUpperCase()})` : '';
    fail(text, nameAt, `unknown indicator "${name}"; expected MA, EMA, RSI or BB${hint}`);
  }
  i += name.length;
  expect('(');
  const args: { value: number; at: number }[] = [];
  for (;;) {
    skip();
    const num = /^\d+(?:\.\d+)?/.exec(text.slice(i))?.[0];
    if (num === undefined) fail(text, i, 'expected a positive number');
    args.push({ value: Number(num), at: i });
    i += num.length;
    skip();
    if (text.charAt(i) === ',') {
      i++;
      continue;
    }
    if (text.charAt(i) === ')') break;
    fail(text, i, 'expected "," or ")"');
  }
  const closeAt = i;
  i++;
  skip();
  if (i < text.length) fail(text, i, 'unexpected text after ")"');
  const names = INDICATOR_PARAMS[name];
  const arities = name === 'RSI' ? [1, 3] : [names.length];
  if (!arities.includes(args.length)) {
    const want =
      name === 'RSI'
        ? '1 or 3 parameters: RSI(period) or RSI(period,lower,upper)'
        : `${names.length} parameters: ${name}(${names.join(',')})`;
    fail(
      text,
      args.length > Math.max(...arities) ? (args[Math.max(...arities)]?.at ?? closeAt) : closeAt,
      `${name} takes ${want}`,
    );
  }
  const params: Record<string, number> = {};
  args.forEach((a, k) => (params[names[k] ?? ''] = a.value));
  const t = templateFromParams(name, params);
  if (isParamProblem(t)) {
    fail(text, args[names.indexOf(t.param)]?.at ?? nameAt, `${name} ${t.param} ${t.problem}`);
  }
  return t;
}

function fail(text: string, position: number, problem: string): never {
  const near =
    position < text.length ? ` near ${JSON.stringify(text.slice(position, position + 12))}` : ' (at end)';
  throw new StrategyInvalidError(
    'signal_template',
    `${problem} at position ${position}${near} in ${JSON.stringify(text.slice(0, 60))}`,
    {
      position,
    },
  );
}
