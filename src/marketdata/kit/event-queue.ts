/**
 * The bounded buffer between the sockets and the consumer of `events()`. One consumer takes; producers
 * either `push` (waits for room: candles, which are never dropped) or `offer` (never waits: socket
 * callbacks, which cannot). Reaching `capacity` calls `onHigh` (the source pauses its sockets); falling to
 * half calls `onLow` (it resumes them). What a socket still delivers after its pause (the rest of one read)
 * lands above `capacity`; droppable offers beyond twice `capacity` are refused, so memory stays bounded.
 */
import { InvalidArgumentError } from '../../util/errors.js';

export interface EventQueueHooks {
  /** The queue reached capacity: stop producing. */
  readonly onHigh: () => void;
  /** The queue drained to half: produce again. */
  readonly onLow: () => void;
}

export class EventQueue<T> {
  private items: T[] = [];
  private head = 0;
  private taker: ((item: T | undefined) => void) | null = null;
  private readonly roomWaiters: (() => void)[] = [];
  private high = false;
  private maxSize = 0;

  constructor(
    readonly capacity: number,
    private readonly hooks: EventQueueHooks,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 2)
      throw new InvalidArgumentError('capacity', 'must be an integer >= 2');
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Largest size seen. */
  get maxSeen(): number {
    return this.maxSize;
  }

  /** True between `onHigh` and `onLow`. */
  get paused(): boolean {
    return this.high;
  }

  /**
   * Add without waiting. A `droppable` item is refused (false) when the queue holds twice its capacity;
   * other items are always taken.
   */
  offer(item: T, droppable = false): boolean {
    if (droppable && this.size >= this.capacity * 2) return false;
    this.add(item);
    return true;
  }

  /** Add once there is room (size below capacity). False if the signal aborted first. */
  async push(item: T, signal: AbortSignal): Promise<boolean> {
    while (this.size >= this.capacity) {
      if (signal.aborted) return false;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          const i = this.roomWaiters.indexOf(done);
          if (i >= 0) this.roomWaiters.splice(i, 1);
          resolve();
        };
        this.roomWaiters.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (signal.aborted) return false;
    this.add(item);
    return true;
  }

  /** The next item; undefined when the signal aborts. One caller at a time. */
  shift(signal: AbortSignal): Promise<T | undefined> {
    if (this.size > 0) return Promise.resolve(this.take());
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        this.taker = null;
        resolve(undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.taker = (item) => {
        signal.removeEventListener('abort', onAbort);
        this.taker = null;
        resolve(item);
      };
    });
  }

  private add(item: T): void {
    this.items.push(item);
    if (this.taker) {
      this.taker(this.take());
      return;
    }
    this.maxSize = Math.max(this.maxSize, this.size);
    if (!this.high && this.size >= this.capacity) {
      this.high = true;
      this.hooks.onHigh();
    }
  }

  private take(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.head += 1;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.size < this.capacity) this.roomWaiters[0]?.();
    if (this.high && this.size <= this.capacity / 2) {
      this.high = false;
      this.hooks.onLow();
    }
    return item;
  }
}
