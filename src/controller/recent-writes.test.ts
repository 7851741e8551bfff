import { RECENT_WRITE_MS, recentlyWritten } from './recent-writes.js';

describe('recentlyWritten', () => {
  it('holds back the same status while the cache may still be catching up, and only that', () => {
    const last = { signature: 'running', at: 1_000 };
    expect(recentlyWritten(last, 'running', 1_000 + RECENT_WRITE_MS - 1)).toBe(true);
    expect(recentlyWritten(last, 'failed', 1_001)).toBe(false);
    expect(recentlyWritten(last, 'running', 1_000 + RECENT_WRITE_MS)).toBe(false);
    expect(recentlyWritten(undefined, 'running', 1_001)).toBe(false);
  });
});
