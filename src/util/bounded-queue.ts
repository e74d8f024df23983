import { ClosedError, InvalidArgumentError } from './errors.js';

/**
 * An async FIFO with a fixed capacity. `push` waits while the queue is full (back-pressure on the
 * producer) instead of growing; `shift` waits while it is empty. `close()` lets consumers drain what is
 * left and then get `undefined`; pushes after close are refused.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private head = 0;
  private readonly notFull: (() => void)[] = [];
  private readonly notEmpty: (() => void)[] = [];
  private closed = false;
  /** Times a push had to wait for space. */
  backpressureEvents = 0;
  enqueued = 0;
  dequeued = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new InvalidArgumentError('capacity', 'must be a positive integer');
  }

  get depth(): number {
    return this.items.length - this.head;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Add an item, waiting while the queue is full. Throws ClosedError after close(). */
  async push(item: T): Promise<void> {
    while (this.depth >= this.capacity && !this.closed) {
      this.backpressureEvents++;
      await new Promise<void>((resolve) => this.notFull.push(resolve));
    }
    if (this.closed) throw new ClosedError('queue');
    this.items.push(item);
    this.enqueued++;
    this.notEmpty.shift()?.();
  }

  /** Add without waiting; false when full or closed. */
  tryPush(item: T): boolean {
    if (this.closed || this.depth >= this.capacity) return false;
    this.items.push(item);
    this.enqueued++;
    this.notEmpty.shift()?.();
    return true;
  }

  /** The next item; waits while empty; `undefined` once closed and drained. */
  async shift(): Promise<T | undefined> {
    while (this.depth === 0) {
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => this.notEmpty.push(resolve));
    }
    const item = this.items[this.head] as T;
    this.head++;
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    this.dequeued++;
    this.notFull.shift()?.();
    return item;
  }

  /** Stop accepting items; waiting consumers drain the rest and then get `undefined`. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.notEmpty.splice(0)) w();
    for (const w of this.notFull.splice(0)) w();
  }
}
