import { usageFromStats } from './docker-runtime.js';

describe('usageFromStats: container usage from the engine stats answer', () => {
  it('takes CPU seconds and usage minus inactive file pages (cgroup v2)', () => {
    const stats = {
      read: '2026-12-01T10:00:00.5Z',
      cpu_stats: { cpu_usage: { total_usage: 2_500_000_000 } },
      memory_stats: { usage: 10_000_000, stats: { inactive_file: 4_000_000 } },
    };
    expect(usageFromStats(stats)).toEqual({
      atMs: Date.parse('2026-12-01T10:00:00.5Z'),
      cpuSecs: 2.5,
      memoryWorkingSetBytes: 6_000_000,
    });
  });

  it('reads total_inactive_file on cgroup v1 and never goes below zero', () => {
    const stats = {
      cpu_stats: { cpu_usage: { total_usage: 1 } },
      memory_stats: { usage: 1000, stats: { total_inactive_file: 5000 } },
    };
    expect(usageFromStats(stats)?.memoryWorkingSetBytes).toBe(0);
  });

  it('has nothing for a stopped container (no usage figures)', () => {
    expect(
      usageFromStats({ read: '0001-01-01T00:00:00Z', cpu_stats: {}, memory_stats: {} }),
    ).toBeUndefined();
  });
});
