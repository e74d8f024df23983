/**
 * The strategy Telegram notifier against a fake Bot API on loopback (grammY speaks real HTTP to it):
 * confirmed chats get the notice, others are skipped and counted; API failures (500, 429 with
 * retry_after, non-JSON, timeout) are counted and never slow notify(); the per-chat rate limit; log_only
 * mode; the token check; close() while the API hangs.
 */
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/util/errors.js';
import type { Logger } from '../../src/util/log.js';
import {
  createTelegramNotifier,
  type TelegramNotifier,
  type TelegramNotifierOptions,
} from '../../src/strategy/notify/notifier.js';
import type { NotifyEvent } from '../../src/strategy/notify/event.js';
import { formatNotice } from '../../src/strategy/notify/format.js';
import {
  FAKE_BOT_TOKEN,
  FakeTelegram,
  HANG,
  INTERNAL_SERVER_ERROR,
  tooManyRequests,
} from '../helpers/fake-telegram.js';

const TOTAL = 'strategy_telegram_notify_total';
const ERRORS = 'strategy_telegram_notify_errors_total';
const SKIPPED = 'strategy_telegram_notify_skipped_total';

/** Rows of `identity_telegram_channels`. */
interface ChannelRow {
  readonly user_id: string;
  readonly chat_id: number;
  readonly is_confirmed: boolean;
  readonly confirmed_at: Date | null;
}

const CHANNELS: readonly ChannelRow[] = [
  {
    user_id: 'u-confirmed',
    chat_id: 411001,
    is_confirmed: true,
    confirmed_at: new Date('2026-02-01T10:00:00Z'),
  },
  // an older confirmed binding and a newer unconfirmed one: neither is the one to use
  {
    user_id: 'u-confirmed',
    chat_id: 399999,
    is_confirmed: true,
    confirmed_at: new Date('2026-01-01T10:00:00Z'),
  },
  { user_id: 'u-confirmed', chat_id: 555555, is_confirmed: false, confirmed_at: null },
  { user_id: 'u-unconfirmed', chat_id: 422002, is_confirmed: false, confirmed_at: null },
  { user_id: 'u-other', chat_id: 433003, is_confirmed: true, confirmed_at: new Date('2026-02-02T10:00:00Z') },
  ...Array.from({ length: 10 }, (_, i) => ({
    user_id: `u-many-${i}`,
    chat_id: 500000 + i,
    is_confirmed: true,
    confirmed_at: new Date('2026-02-03T10:00:00Z'),
  })),
];

/**
 * The caller's lookup, as the notice policy reads the table: confirmed rows only,
 * `ORDER BY confirmed_at DESC NULLS LAST, chat_id ASC LIMIT 1`.
 */
async function confirmedChat(userId: string): Promise<number | null> {
  await Promise.resolve();
  const rows = CHANNELS.filter((r) => r.user_id === userId && r.is_confirmed).sort(
    (a, b) =>
      (b.confirmed_at?.getTime() ?? -Infinity) - (a.confirmed_at?.getTime() ?? -Infinity) ||
      a.chat_id - b.chat_id,
  );
  return rows[0]?.chat_id ?? null;
}

function ev(over: Partial<NotifyEvent> = {}): NotifyEvent {
  return {
    userId: 'u-confirmed',
    type: 'signal',
    strategyId: 's-1',
    runId: 'r-1',
    instrumentKey: 'binance:spot:BTCUSDT',
    strategyName: 'MA cross',
    timeframe: '1m',
    signal: 'buy',
    price: '43000.5',
    ...over,
  };
}

async function metric(
  registry: Registry,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (m === undefined) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

/** The metric reaches `expected` (the fake records a message before the client has read the answer). */
async function settles(
  registry: Registry,
  name: string,
  labels: Readonly<Record<string, string>>,
  expected: number,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let actual = await metric(registry, name, labels);
  while (actual !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
    actual = await metric(registry, name, labels);
  }
  expect(actual, `${name} ${JSON.stringify(labels)}`).toBe(expected);
}

async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function captureLog(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb): void {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log: Logger = pino({ level: 'debug' }, stream);
  return {
    log,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.reverse()) await c();
  closers.length = 0;
});

interface Setup {
  readonly fake: FakeTelegram;
  readonly notifier: TelegramNotifier;
  readonly registry: Registry;
}

async function setup(opts: Partial<TelegramNotifierOptions> = {}): Promise<Setup> {
  const fake = await FakeTelegram.start();
  closers.push(() => fake.close());
  const registry = new Registry();
  const notifier = createTelegramNotifier({
    mode: 'telegram',
    botToken: FAKE_BOT_TOKEN,
    apiRoot: fake.apiRoot,
    chatFor: confirmedChat,
    registry,
    closeTimeoutMs: 500,
    ...opts,
  });
  closers.push(() => notifier.close());
  return { fake, notifier, registry };
}

describe('telegram notifier', () => {
  it('sends the notice to the confirmed chat of the user, as plain text', async () => {
    const { fake, notifier, registry } = await setup();
    notifier.notify(
      ev({ type: 'trade_close', side: 'long', price: 43100.5, pnl: 12.3, pnlPct: '1.2', signal: undefined }),
    );
    await fake.waitFor(() => fake.messages.length === 1, 5000, 'the message');
    const [msg] = fake.messages;
    expect(msg?.chatId).toBe(411001);
    expect(msg?.text).toBe(
      'TRADE CLOSE | strategy=MA cross | strategy_id=s-1 | run_id=r-1 | instrument=binance:spot:BTCUSDT | ' +
        'timeframe=1m | side=long | price=43100.5 | pnl=+12.3 (+1.2%)',
    );
    expect(fake.requests[0]?.method).toBe('sendMessage');
    expect(fake.requests[0]?.contentType).toBe('application/json');

    notifier.notify(ev({ type: 'signal', signal: 'buy', price: '43000.5' }));
    notifier.notify(
      ev({ type: 'trade_open', side: 'long', price: '43001', quantity: '0.01', signal: undefined }),
    );
    notifier.notify(ev({ type: 'failed', error: 'indicator  MA:\n  not enough candles' }));
    await fake.waitFor(() => fake.messages.length === 4, 5000, 'four messages');
    // one user's notices go out one at a time, in order
    expect(fake.messages.map((m) => m.text)).toEqual([
      msg?.text,
      'SIGNAL | strategy=MA cross | strategy_id=s-1 | run_id=r-1 | instrument=binance:spot:BTCUSDT | timeframe=1m | signal=buy | price=43000.5',
      'TRADE OPEN | strategy=MA cross | strategy_id=s-1 | run_id=r-1 | instrument=binance:spot:BTCUSDT | timeframe=1m | side=long | price=43001 | qty=0.01',
      'FAILED | strategy=MA cross | strategy_id=s-1 | run_id=r-1 | instrument=binance:spot:BTCUSDT | timeframe=1m | error=indicator MA: not enough candles',
    ]);
    expect(fake.messages.every((m) => m.chatId === 411001)).toBe(true);

    // started and stopped are not notified, and not counted either
    notifier.notify(ev({ type: 'started' }));
    notifier.notify(ev({ type: 'stopped' }));
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.requests).toHaveLength(4);
    await settles(registry, TOTAL, { mode: 'telegram' }, 4);
    expect(await metric(registry, TOTAL, { type: 'trade_close' })).toBe(1);
    expect(await metric(registry, ERRORS)).toBe(0);
    expect(await metric(registry, SKIPPED)).toBe(0);
  });

  it('skips and counts users without a confirmed chat binding', async () => {
    const { fake, notifier, registry } = await setup();
    notifier.notify(ev({ userId: 'u-unconfirmed' }));
    notifier.notify(ev({ userId: 'u-nobody', type: 'trade_open' }));
    await until(
      async () => (await metric(registry, SKIPPED, { reason: 'no_confirmed_chat' })) === 2,
      'skips',
    );
    notifier.notify(ev({ userId: 'u-other' }));
    await fake.waitFor(() => fake.messages.length === 1, 5000, 'the confirmed user');
    expect(fake.messages[0]?.chatId).toBe(433003);
    expect(fake.messages.some((m) => m.chatId === 422002)).toBe(false);
    await settles(registry, TOTAL, {}, 1);
    expect(await metric(registry, ERRORS)).toBe(0);
  });

  it('counts a 500 as an error and goes on with the next notice', async () => {
    const { fake, notifier, registry } = await setup();
    fake.queueReply(INTERNAL_SERVER_ERROR, { kind: 'raw', status: 502, body: '<html>Bad Gateway</html>' });
    notifier.notify(ev());
    notifier.notify(ev({ type: 'trade_open', signal: undefined }));
    await until(async () => (await metric(registry, ERRORS)) === 2, 'two errors');
    expect(await metric(registry, ERRORS, { reason: 'server_error' })).toBe(1);
    expect(await metric(registry, ERRORS, { reason: 'network' })).toBe(1); // not the Bot API's JSON
    notifier.notify(ev({ type: 'trade_close', signal: undefined }));
    await fake.waitFor(() => fake.messages.length === 1, 5000, 'the next notice');
    expect(fake.requests).toHaveLength(3);
    await settles(registry, TOTAL, {}, 1);
  });

  it('counts a 429, pauses that chat for retry_after and skips its notices meanwhile', async () => {
    const { fake, notifier, registry } = await setup();
    fake.queueReply(tooManyRequests(1));
    notifier.notify(ev());
    await until(async () => (await metric(registry, ERRORS, { reason: 'too_many_requests' })) === 1, '429');
    const pausedAt = Date.now();
    notifier.notify(ev({ type: 'trade_open', signal: undefined }));
    notifier.notify(ev({ userId: 'u-other' })); // another chat is not paused
    await until(async () => (await metric(registry, SKIPPED, { reason: 'retry_after' })) === 1, 'skip');
    await fake.waitFor(() => fake.messages.length === 1, 5000, 'the other chat');
    expect(fake.messages[0]?.chatId).toBe(433003);
    expect(fake.requests.filter((r) => r.params['chat_id'] === 411001)).toHaveLength(1);

    await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - pausedAt))));
    notifier.notify(ev({ type: 'trade_close', signal: undefined }));
    await fake.waitFor(() => fake.messages.length === 2, 5000, 'after the pause');
    expect(fake.messages[1]?.chatId).toBe(411001);
    await settles(registry, TOTAL, {}, 2);
    expect(await metric(registry, ERRORS)).toBe(1);
  });

  it('counts a timeout as an error', async () => {
    const { fake, notifier, registry } = await setup({ timeoutMs: 200 });
    fake.queueReply(HANG);
    notifier.notify(ev());
    await until(async () => (await metric(registry, ERRORS, { reason: 'timeout' })) === 1, 'timeout', 3000);
    notifier.notify(ev({ type: 'trade_open', signal: undefined }));
    await fake.waitFor(() => fake.messages.length === 1, 5000, 'the next notice');
  });

  it('keeps notify() fast while the API hangs, and bounds the queue', async () => {
    const { fake, notifier, registry } = await setup({ queueCapacity: 1000, timeoutMs: 30_000 });
    fake.behaviour = HANG;
    notifier.notify(ev());
    await fake.waitFor(() => fake.hangingCount === 1, 5000, 'a hanging request');

    const events = Array.from({ length: 1000 }, (_, i) =>
      ev({ userId: `u-many-${i % 10}`, runId: `r-${i}` }),
    );
    const t0 = performance.now();
    for (const e of events) notifier.notify(e);
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeLessThan(50);
    // the queue holds 1000: five more are dropped and counted, still without waiting
    for (let i = 0; i < 5; i += 1) notifier.notify(ev({ userId: 'u-other' }));
    expect(await metric(registry, SKIPPED, { reason: 'queue_full' })).toBe(5);
    expect(notifier.pending).toBe(1001);

    await fake.waitFor(() => fake.hangingCount === 4, 5000, 'four sends in flight (concurrency 4)');
    expect(await metric(registry, TOTAL)).toBe(0);
  });

  it('skips notices beyond the per-chat rate limit', async () => {
    const { fake, notifier, registry } = await setup({ perChatPerMinute: 3 });
    for (let i = 0; i < 5; i += 1) notifier.notify(ev({ runId: `r-${i}` }));
    notifier.notify(ev({ userId: 'u-other' }));
    await until(
      async () => (await metric(registry, SKIPPED, { reason: 'rate_limited' })) === 2,
      'rate limit',
    );
    await fake.waitFor(() => fake.messages.length === 4, 5000, 'four messages');
    expect(
      fake.messages.filter((m) => m.chatId === 411001).map((m) => m.text.match(/run_id=(r-\d)/)?.[1]),
    ).toEqual(['r-0', 'r-1', 'r-2']);
    expect(fake.messages.filter((m) => m.chatId === 433003)).toHaveLength(1);
    await settles(registry, TOTAL, {}, 4);
  });

  it('debounces the same failure of the same strategy', async () => {
    const { fake, notifier, registry } = await setup();
    notifier.notify(ev({ type: 'failed', error: 'redis down' }));
    notifier.notify(ev({ type: 'failed', error: ' redis   down ' }));
    notifier.notify(ev({ type: 'failed', error: 'other error' }));
    expect(await metric(registry, SKIPPED, { reason: 'debounced' })).toBe(1);
    await fake.waitFor(() => fake.messages.length === 2, 5000, 'two messages');
  });

  it('in log_only mode logs the notice and sends nothing', async () => {
    const fake = await FakeTelegram.start();
    closers.push(() => fake.close());
    const registry = new Registry();
    const { log, lines } = captureLog();
    const notifier = createTelegramNotifier({
      mode: 'log_only',
      apiRoot: fake.apiRoot,
      chatFor: confirmedChat,
      registry,
      log,
    });
    closers.push(() => notifier.close());
    expect(notifier.mode).toBe('log_only');
    notifier.notify(ev());
    notifier.notify(ev({ userId: 'u-unconfirmed' }));
    await until(
      async () => (await metric(registry, TOTAL, { mode: 'log_only', type: 'signal' })) === 1,
      'logged',
    );
    await until(
      async () => (await metric(registry, SKIPPED, { reason: 'no_confirmed_chat' })) === 1,
      'skipped',
    );
    const notice = lines().find((l) => l['msg'] === 'telegram notice (log_only)');
    expect(notice).toMatchObject({
      chatId: 411001,
      userId: 'u-confirmed',
      type: 'signal',
      text: formatNotice(ev()),
    });
    expect(lines().some((l) => l['userId'] === 'u-unconfirmed' && l['level'] === 40)).toBe(true);
    await notifier.close();
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses telegram mode without a bot token, naming TELEGRAM_BOT_TOKEN', () => {
    for (const botToken of [undefined, '', '   ', 'not-a-token']) {
      let caught: unknown;
      try {
        createTelegramNotifier({ mode: 'telegram', botToken, chatFor: confirmedChat });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).key).toBe('TELEGRAM_BOT_TOKEN');
      expect((caught as ConfigError).message).toContain('TELEGRAM_BOT_TOKEN');
      expect((caught as ConfigError).code).toBe('CONFIG_INVALID');
    }
    expect(() => createTelegramNotifier({ mode: 'log_only', chatFor: confirmedChat })).not.toThrow();
  });

  it('close() while the API hangs returns within its bound, and later notices are skipped', async () => {
    const { fake, notifier, registry } = await setup({ closeTimeoutMs: 300, timeoutMs: 30_000 });
    fake.behaviour = HANG;
    notifier.notify(ev());
    notifier.notify(ev({ type: 'trade_open', signal: undefined }));
    await fake.waitFor(() => fake.hangingCount === 1, 5000, 'a hanging request');

    const t0 = performance.now();
    const closing = notifier.close();
    expect(notifier.close()).toBe(closing);
    await closing;
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1000);
    expect(notifier.pending).toBe(0);
    // the aborted send and the queued notice are skipped as closed, not errors
    expect(await metric(registry, SKIPPED, { reason: 'closed' })).toBe(2);
    expect(await metric(registry, ERRORS)).toBe(0);

    notifier.notify(ev());
    expect(await metric(registry, SKIPPED, { reason: 'closed' })).toBe(3);
    await notifier.close();
  });
});
