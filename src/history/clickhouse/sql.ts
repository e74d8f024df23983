/**
 * Rendering values into ClickHouse SQL text. ClickHouse 18.16 (Debian's) has no query parameters
 * (`{name:Type}` arrives in 19.x; the HTTP client's `param_*` fails there with "Unknown setting"), so
 * the few values a read puts into SQL (an instrument key, times in ms, a limit) are rendered here and
 * nowhere else. Everything is strict: a value that cannot be rendered exactly is an InvalidArgumentError, never a
 * best effort. Floats are deliberately not rendered at all: 18.16 parses decimal text into Float64
 * inexactly, so candle prices travel as binary (see row-binary.ts).
 */
import { InvalidArgumentError } from '../../util/errors.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `s` has no lone UTF-16 surrogate, i.e. it has an exact UTF-8 form. */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

const NAMED_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  "'": "\\'",
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
};

/**
 * A single-quoted ClickHouse string literal whose value is exactly `value` (as UTF-8). Backslash and
 * quote are backslash-escaped, control characters become `\n`-style or `\xHH` escapes (understood by
 * 18.16 and current releases), other characters are passed as UTF-8. A string with a lone UTF-16
 * surrogate has no UTF-8 form and is refused.
 */
export function sqlString(value: string): string {
  if (typeof value !== 'string')
    throw new InvalidArgumentError('sqlString', `expected a string, got ${typeof value}`);
  if (!isWellFormed(value))
    throw new InvalidArgumentError('sqlString', 'string contains a lone UTF-16 surrogate');
  let escaped = '';
  for (const ch of value) {
    const named = NAMED_ESCAPES[ch];
    const code = ch.codePointAt(0) ?? 0;
    if (named !== undefined) escaped += named;
    else if (code < 0x20 || code === 0x7f)
      escaped += `\\x${code.toString(16).padStart(2, '0').toUpperCase()}`;
    else escaped += ch;
  }
  return `'${escaped}'`;
}

/**
 * An integer literal: `value` must be a safe integer (|n| <= 2^53 - 1), so its decimal text is exact
 * and never uses exponent notation. `min` (default 0, for the UInt64 columns) is checked too.
 */
export function sqlInt(value: number, min = 0): string {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidArgumentError('sqlInt', `expected a safe integer, got ${String(value)}`);
  }
  if (value < min) throw new InvalidArgumentError('sqlInt', `${value} is below ${min}`);
  // String(-0) is '0'; safe integers print without exponent or fraction.
  return String(value);
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** True for a plain identifier (letters, digits, underscore; not starting with a digit; at most 64). */
export function isPlainIdentifier(name: string): boolean {
  return IDENTIFIER.test(name);
}

/** A back-quoted identifier. Only plain identifiers are accepted: no escaping rules to get wrong. */
export function sqlIdentifier(name: string): string {
  if (!isPlainIdentifier(name)) {
    throw new InvalidArgumentError(
      'sqlIdentifier',
      `${JSON.stringify(name.slice(0, 80))} is not a plain identifier`,
    );
  }
  return `\`${name}\``;
}
