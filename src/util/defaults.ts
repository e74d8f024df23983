/**
 * Options with defaults: each options interface has one `*_DEFAULTS` constant, applied in one place
 * (its constructor or start function) with `withDefaults`.
 */

/** `O` with the fields that `D` gives a default for no longer optional. */
export type WithDefaults<O, D> = Omit<O, keyof D> & {
  readonly [K in keyof D & keyof O]-?: Exclude<O[K], undefined> | D[K];
};

/**
 * `defaults` overridden by the fields of `options` that are not `undefined`: an option given as
 * `undefined` (e.g. passed through from an unset flag) keeps its default, unlike `{ ...defaults, ...options }`.
 * Shallow: an object-valued option replaces its default whole; `null` is a value and overrides.
 */
export function withDefaults<O extends object, D extends Partial<O>>(
  defaults: D,
  options: O,
): WithDefaults<O, D> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) out[key] = value;
  return out as WithDefaults<O, D>;
}
