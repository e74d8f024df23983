/**
 * Per-key serialization in this process: the quota checks of one user run one after another, so
 * parallel requests to one API process cannot all pass a count before any of them has inserted
 * (docs/security.md, "Rate limits and quotas", says what remains across processes).
 */
export class KeyedSerial {
  private readonly tails = new Map<string, Promise<void>>();

  /** Run `fn` after every earlier task of `key` has settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
