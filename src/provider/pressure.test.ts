import type { NodeUsage } from '../common/cloudlink/usage.js';
import { nodeConditions } from './node.js';
import { nextPressure, pressureChanged, PRESSURE_TRANSITION_MS } from './pressure.js';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
const healthy: NodeUsage = {
  atMs: 0,
  cpuSecs: 100,
  memoryBytes: 4 * GIB,
  memoryWorkingSetBytes: 1 * GIB,
  diskBytes: 100 * GIB,
  diskAvailableBytes: 50 * GIB,
  inodes: 1000,
  inodesFree: 900,
  pids: 300,
  pidsMax: 32768,
};

const statuses = (p: ReturnType<typeof nextPressure>): string[] =>
  [p.MemoryPressure, p.DiskPressure, p.PIDPressure].map((c) => c.status);

describe('pressure conditions from device readings', () => {
  it('are False with kedge reasons while every reading is under its threshold', () => {
    const p = nextPressure(undefined, healthy, 1000);
    expect(statuses(p)).toEqual(['False', 'False', 'False']);
    expect(p.MemoryPressure.reason).toBe('DeviceHasSufficientMemory');
    expect(p.MemoryPressure.message).toContain('3072Mi of memory available');
  });

  it.each([
    [
      'MemoryPressure',
      { memoryWorkingSetBytes: 4 * GIB - 50 * MIB },
      'DeviceHasInsufficientMemory',
    ],
    ['DiskPressure', { diskAvailableBytes: 5 * GIB }, 'DeviceHasDiskPressure'],
    ['DiskPressure', { inodesFree: 10 }, 'DeviceHasDiskPressure'],
    ['PIDPressure', { pids: 30_000 }, 'DeviceHasInsufficientPID'],
  ] as const)('set %s True past the kubelet default (%j)', (type, reading, reason) => {
    const p = nextPressure(undefined, { ...healthy, ...reading }, 1000);
    expect(p[type]).toMatchObject({ status: 'True', reason, sinceMs: 1000 });
    expect(pressureChanged(nextPressure(undefined, healthy, 0), p)).toBe(true);
  });

  it('stay True for the transition period after the last reading over the threshold', () => {
    const low = { ...healthy, memoryWorkingSetBytes: 4 * GIB - 10 * MIB };
    const over = nextPressure(undefined, low, 0);
    const recovering = nextPressure(over, healthy, PRESSURE_TRANSITION_MS - 1);
    expect(recovering.MemoryPressure.status).toBe('True');
    expect(pressureChanged(over, recovering)).toBe(false);
    const recovered = nextPressure(recovering, healthy, PRESSURE_TRANSITION_MS);
    expect(recovered.MemoryPressure).toMatchObject({
      status: 'False',
      sinceMs: PRESSURE_TRANSITION_MS,
    });
  });

  it('read no pressure from a device that reports no memory or pid figures', () => {
    const silent = { ...healthy, memoryBytes: 0, memoryWorkingSetBytes: 0 };
    delete silent.pids;
    delete silent.pidsMax;
    const p = nextPressure(undefined, silent, 0);
    expect(statuses(p)).toEqual(['False', 'False', 'False']);
  });

  it('reach the Node as its conditions, Unknown while disconnected or before any reading', () => {
    const now = '2026-12-01T00:00:00Z';
    const byType = (conditions: Record<string, unknown>[]) =>
      Object.fromEntries(conditions.map((c) => [c.type, c.status]));
    const over = nextPressure(undefined, { ...healthy, diskAvailableBytes: 0 }, 0);
    expect(byType(nodeConditions({ connected: true }, now, over))).toMatchObject({
      Ready: 'True',
      MemoryPressure: 'False',
      DiskPressure: 'True',
      PIDPressure: 'False',
    });
    expect(byType(nodeConditions({ connected: true }, now))).toMatchObject({
      MemoryPressure: 'Unknown',
    });
    expect(byType(nodeConditions({ connected: false }, now, over))).toMatchObject({
      Ready: 'False',
      DiskPressure: 'Unknown',
    });
  });
});
