import {
  decideRollout,
  rolloutLimits,
  scaledValue,
  type DeviceProgress,
  type RolloutInput,
} from './rollout.js';

const NOW = 1_000_000;

/** `n` connected devices d00…, all on the stable revision and healthy. */
function fleet(n: number, over: Partial<DeviceProgress> = {}): DeviceProgress[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `d${String(i).padStart(2, '0')}`,
    connected: true,
    position: 'stable' as const,
    outcome: 'successful' as const,
    ...over,
  }));
}

function input(devices: DeviceProgress[], over: Partial<RolloutInput> = {}): RolloutInput {
  return {
    targetRevision: 'new',
    generation: 2,
    memory: { stableRevision: 'old' },
    devices,
    limits: rolloutLimits({ maxUnavailable: 2, failureThreshold: 2 }, devices.length),
    previous: {},
    nowMs: NOW,
    ...over,
  };
}

const set = (devices: DeviceProgress[], names: string[], patch: Partial<DeviceProgress>) =>
  devices.map((d) => (names.includes(d.name) ? { ...d, ...patch } : d));

const targetOf = (d: ReturnType<typeof decideRollout>) =>
  [...d.assignments].filter(([, a]) => a === 'target').map(([n]) => n);

describe('rollout limits', () => {
  it('scales percentages: maxUnavailable rounds down, the threshold up, both at least 1', () => {
    expect(scaledValue('25%', 20, 'down')).toBe(5);
    expect(scaledValue('25%', 3, 'down')).toBe(1);
    expect(scaledValue('10%', 21, 'up')).toBe(3);
    expect(scaledValue(4, 20, 'down')).toBe(4);
    expect(rolloutLimits(undefined, 40)).toEqual({
      maxUnavailable: 10,
      failureThreshold: 4,
      autoRollback: true,
      progressDeadlineMs: 600_000,
    });
  });
});

describe('decideRollout', () => {
  it('starts the first batch: at most maxUnavailable devices, by name, the rest untouched', () => {
    const d = decideRollout(input(fleet(20)));
    expect(d.phase).toBe('Progressing');
    expect(d.started).toEqual(['d00', 'd01']);
    expect(targetOf(d)).toEqual(['d00', 'd01']);
    expect([...d.assignments.values()].filter((a) => a === 'keep')).toHaveLength(18);
    expect(d.successful).toBe(0); // no device runs the new spec yet
    expect(d.events).toEqual([expect.objectContaining({ reason: 'RolloutBatchStarted' })]);
  });

  it('waits while the batch is updating and starts the next as devices succeed', () => {
    let devices = set(fleet(20), ['d00', 'd01'], { position: 'target', outcome: 'pending' });
    expect(decideRollout(input(devices)).started).toEqual([]);
    devices = set(devices, ['d00'], { outcome: 'successful' });
    const d = decideRollout(input(devices, { previous: { targetRevision: 'new', successful: 0 } }));
    expect(d.started).toEqual(['d02']);
    expect(d.successful).toBe(1);
    expect(d.events.map((e) => e.reason)).toEqual(['RolloutBatchStarted', 'RolloutBatchCompleted']);
  });

  it('leaves disconnected devices for later and gives devices with nothing at once', () => {
    let devices = set(fleet(4), ['d00', 'd01'], { connected: false });
    devices = set(devices, ['d03'], { position: 'none', outcome: 'pending' });
    const d = decideRollout(input(devices));
    expect(d.started).toEqual(['d02']);
    expect(targetOf(d)).toEqual(['d02', 'd03']);
  });

  it('halts at the failure threshold and rolls every device back to the stable revision', () => {
    const devices = set(fleet(20), ['d00', 'd01'], {
      position: 'target',
      outcome: 'failed',
      failure: { device: 'x', module: 'app', reason: 'ErrImagePull', message: 'denied' },
    });
    const d = decideRollout(input(devices));
    expect(d.phase).toBe('RollingBack');
    expect(d.memory).toMatchObject({
      stableRevision: 'old',
      failedRevision: 'new',
      failedGeneration: 2,
    });
    expect(d.memory.failedReason).toContain('ErrImagePull');
    expect([...d.assignments.values()].every((a) => a === 'stable')).toBe(true);
    expect(d.events.map((e) => e.reason)).toEqual(['RolloutHalted', 'RollingBack']);
    expect(d.failures).toHaveLength(2);
  });

  it('keeps rolling while failures stay under the threshold', () => {
    const devices = set(fleet(20), ['d00'], { position: 'target', outcome: 'failed' });
    const d = decideRollout(input(devices));
    expect(d.phase).toBe('Progressing');
    expect(d.started).toEqual(['d01', 'd02']); // a failed device holds no slot
    expect(d.failures).toHaveLength(1);
  });

  it('counts a connected device past the progress deadline as failed', () => {
    const late = {
      position: 'target' as const,
      outcome: 'pending' as const,
      sinceMs: NOW - 601_000,
    };
    const devices = set(fleet(20), ['d00', 'd01'], late);
    const d = decideRollout(
      input(devices, { limits: rolloutLimits({ maxUnavailable: 2, failureThreshold: 2 }, 20) }),
    );
    expect(d.phase).toBe('RollingBack');
    expect(d.failures.map((f) => f.reason)).toEqual([
      'ProgressDeadlineExceeded',
      'ProgressDeadlineExceeded',
    ]);
  });

  it('reports RolledBack once every device runs the stable revision again, with an event once', () => {
    const memory = {
      stableRevision: 'old',
      failedRevision: 'new',
      failedGeneration: 2,
      failedReason: '2 failed',
    };
    const rolling = set(fleet(20), ['d00'], { position: 'target', outcome: 'failed' });
    expect(decideRollout(input(rolling, { memory })).phase).toBe('RollingBack');
    const d = decideRollout(input(fleet(20), { memory, previous: { phase: 'RollingBack' } }));
    expect(d.phase).toBe('RolledBack');
    expect(d.successful).toBe(20);
    expect(d.message).toContain('rolled back to revision old');
    expect(d.message).toContain('generation 2');
    expect(d.events.map((e) => e.reason)).toEqual(['RolledBack']);
    expect(
      decideRollout(input(fleet(20), { memory, previous: { phase: 'RolledBack' } })).events,
    ).toEqual([]);
  });

  it('starts a fresh rollout for a new generation, even of the same revision', () => {
    const memory = { stableRevision: 'old', failedRevision: 'new', failedGeneration: 2 };
    const d = decideRollout(input(fleet(20), { memory, generation: 3 }));
    expect(d.phase).toBe('Progressing');
    expect(d.started).toEqual(['d00', 'd01']);
  });

  it('halts without rolling back when autoRollback is false, or with no good revision', () => {
    const devices = set(fleet(20), ['d00', 'd01'], { position: 'target', outcome: 'failed' });
    const limits = rolloutLimits(
      { maxUnavailable: 2, failureThreshold: 2, autoRollback: false },
      20,
    );
    const d = decideRollout(input(devices, { limits }));
    expect(d.phase).toBe('Halted');
    expect([...d.assignments.values()].every((a) => a === 'keep')).toBe(true);
    expect(d.events.map((e) => e.reason)).toEqual(['RolloutHalted']);
    // A device whose pod was being replaced finishes; it would run nothing otherwise.
    const replacing = set(devices, ['d02'], { position: 'changing', outcome: 'pending' });
    expect(decideRollout(input(replacing, { limits })).assignments.get('d02')).toBe('target');
    const first = decideRollout(input(devices, { memory: {} }));
    expect(first.phase).toBe('Halted');
    expect(first.message).toContain('no earlier revision');
  });

  it('completes once every connected device has settled on the target, making it stable', () => {
    let devices = fleet(20, { position: 'target' });
    devices = set(devices, ['d19'], { position: 'stable', connected: false });
    const d = decideRollout(input(devices));
    expect(d.phase).toBe('Complete');
    expect(d.memory).toEqual({ stableRevision: 'new' });
    expect(d.successful).toBe(19);
    expect(d.events.map((e) => e.reason)).toEqual(['RolloutComplete']);
    // Steady state: the offline device gets it when it is back, without a batch.
    const after = decideRollout(input(devices, { memory: d.memory }));
    expect(after.phase).toBe('Complete');
    expect(targetOf(after)).toHaveLength(20);
  });

  it('gives a first deployment to every device at once', () => {
    const d = decideRollout(
      input(fleet(20, { position: 'none', outcome: 'pending' }), { memory: {} }),
    );
    expect(targetOf(d)).toHaveLength(20);
    expect(d.phase).toBe('Progressing');
  });
});
