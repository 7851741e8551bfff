import { coolOffMs, DEFAULT_RESTART_SETTINGS } from './backoff.js';

describe('coolOffMs', () => {
  it('follows min(10 · 2^n, 300) seconds with edgeAgent defaults', () => {
    const secs = [0, 1, 2, 3, 4, 5, 6, 20, 2000].map(
      (n) => coolOffMs(n, DEFAULT_RESTART_SETTINGS) / 1000,
    );
    expect(secs).toEqual([10, 20, 40, 80, 160, 300, 300, 300, 300]);
  });

  it('scales with the configured unit and ceiling', () => {
    const settings = { ...DEFAULT_RESTART_SETTINGS, backoffUnitMs: 250, backoffMaxMs: 1500 };
    expect([0, 1, 2, 3, 4].map((n) => coolOffMs(n, settings))).toEqual([
      250, 500, 1000, 1500, 1500,
    ]);
  });
});
