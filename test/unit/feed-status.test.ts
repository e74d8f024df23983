/**
 * The per-source feed status (docs/contracts.md §8) with an instrument the venue refused: it is
 * `stopped` with the venue's reason, and the source's state is about the instruments it serves.
 */
import { describe, expect, it } from 'vitest';
import { FeedStatus } from '../../src/marketdata/feed-status.js';

describe('feed status', () => {
  it('a rejected instrument is stopped with its reason; the others make the state', () => {
    let t = 1_000_000;
    const s = new FeedStatus('bybit', ['bybit:spot:BTCUSDT', 'bybit:spot:NOPEUSDT'], 30_000, () => t);
    s.onNotice({
      kind: 'rejected',
      instrumentKey: 'bybit:spot:NOPEUSDT',
      configKey: 'market_data.instruments[1]',
      reason: 'not listed by bybit',
    });
    s.onNotice({ kind: 'state', state: 'STREAM', reason: 'connected' });
    s.onTick('bybit:spot:BTCUSDT', 1, 2);
    expect(s.evaluate()).toBe('STREAM');
    const snap = s.snapshot();
    expect(snap.instruments['bybit:spot:NOPEUSDT']).toMatchObject({
      state: 'stopped',
      reason: 'not listed by bybit',
    });
    expect(snap.instruments['bybit:spot:BTCUSDT']).toMatchObject({ state: 'ok', reason: null });
    t += 31_000; // the served instrument goes quiet: the source is IDLE, the refused one stays stopped
    expect(s.evaluate()).toBe('IDLE');
    expect(s.snapshot().instruments['bybit:spot:BTCUSDT']?.state).toBe('stale');
    expect(s.snapshot().instruments['bybit:spot:NOPEUSDT']?.state).toBe('stopped');
  });

  it('a source whose every instrument was refused is IDLE, not waiting for data forever', () => {
    const s = new FeedStatus('okx', ['okx:spot:NOPE-USDT'], 30_000);
    s.onNotice({
      kind: 'rejected',
      instrumentKey: 'okx:spot:NOPE-USDT',
      configKey: 'market_data.instruments[0]',
      reason: 'not listed by okx',
    });
    expect(s.evaluate()).toBe('IDLE');
    expect(s.snapshot().reason).toMatch(/refused every one/);
  });
});
