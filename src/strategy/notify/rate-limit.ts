/**
 * The notifier's send policy: at most `perChatPerMinute` attempts per chat in any 60-second
 * window, a chat paused for a 429's `retry_after`, and repeats of the same `failed` error for the same
 * user and strategy debounced. All times are `performance.now()` ms; `sweep` bounds the memory.
 */
import type { NotifyEvent } from './event.js';

const WINDOW_MS = 60_000;

export class NoticePolicy {
  /** Per chat: times of the attempts in the last minute, oldest first. */
  private readonly windows = new Map<number, number[]>();
  /** Per chat: paused until, after a 429's `retry_after`. */
  private readonly pausedUntil = new Map<number, number>();
  /** `failed` debounce: key -> time of the last notice. */
  private readonly lastFailed = new Map<string, number>();

  /**
   * @param perChatPerMinute most attempts per chat in any 60-second window
   * @param failedDebounceMs window of the `failed` debounce, ms; 0 turns it off
   */
  constructor(
    readonly perChatPerMinute: number,
    private readonly failedDebounceMs: number,
  ) {}

  /** True while `chatId` is paused after a 429. */
  paused(chatId: number, now: number): boolean {
    const until = this.pausedUntil.get(chatId);
    return until !== undefined && until > now;
  }

  /** Pause `chatId` for `seconds` (a 429's `retry_after`). */
  pause(chatId: number, now: number, seconds: number): void {
    this.pausedUntil.set(chatId, now + seconds * 1000);
  }

  /** Count an attempt for `chatId`; false (and nothing counted) when its window is full. */
  takeSlot(chatId: number, now: number): boolean {
    let w = this.windows.get(chatId);
    if (w === undefined) {
      w = [];
      this.windows.set(chatId, w);
    }
    while (w.length > 0 && (w[0] ?? now) <= now - WINDOW_MS) w.shift();
    if (w.length >= this.perChatPerMinute) return false;
    w.push(now);
    return true;
  }

  /** True when a `failed` event repeats an earlier one within the debounce window; else remembers it. */
  debounced(event: NotifyEvent, now: number): boolean {
    if (this.failedDebounceMs === 0) return false;
    const errorText = (event.error ?? '').replace(/\s+/g, ' ').trim();
    const key = `${event.userId}\u0000${event.strategyId}\u0000${errorText}`;
    const last = this.lastFailed.get(key);
    if (last !== undefined && now - last < this.failedDebounceMs) return true;
    this.lastFailed.set(key, now);
    return false;
  }

  /** Forget windows, pauses and debounce keys that have expired. */
  sweep(now: number): void {
    for (const [chat, w] of this.windows) {
      const last = w[w.length - 1];
      if (last === undefined || last <= now - WINDOW_MS) this.windows.delete(chat);
    }
    for (const [chat, until] of this.pausedUntil) if (until <= now) this.pausedUntil.delete(chat);
    for (const [key, at] of this.lastFailed) {
      if (now - at >= this.failedDebounceMs) this.lastFailed.delete(key);
    }
  }
}
