import { DEFAULT_RESTART_SETTINGS, type RestartSettings } from './backoff.js';
import { planReconcile, type PlanInput, type RestartRecord } from './planner.js';
import type { ModuleSpec, ObservedModule } from './types.js';

const NOW = 1_000_000_000;
const settings: RestartSettings = { ...DEFAULT_RESTART_SETTINGS, maxRestarts: 3 };

function spec(name: string, over: Partial<ModuleSpec> = {}): ModuleSpec {
  return {
    name,
    moduleId: name,
    image: 'img:1',
    createOptions: {},
    env: {},
    configHash: `h-${name}`,
    restartPolicy: 'always',
    desiredStatus: 'running',
    ...over,
  };
}

function seen(name: string, over: Partial<ObservedModule> = {}): ObservedModule {
  return {
    name,
    id: `id-${name}`,
    configHash: `h-${name}`,
    state: 'running',
    health: 'none',
    startedAt: new Date(NOW - 1000),
    image: 'img:1',
    ...over,
  };
}

function plan(over: Partial<PlanInput>) {
  return planReconcile({
    desired: [],
    observed: [],
    records: new Map(),
    nowMs: NOW,
    settings,
    ...over,
  });
}

function records(entries: Record<string, Partial<RestartRecord>>): Map<string, RestartRecord> {
  return new Map(
    Object.entries(entries).map(([n, r]) => [n, { configHash: `h-${n}`, restartCount: 0, ...r }]),
  );
}

describe('planReconcile', () => {
  it('creates missing modules in the desired (startup) order', () => {
    const p = plan({ desired: [spec('a'), spec('b'), spec('c', { desiredStatus: 'stopped' })] });
    expect(p.modules.map((m) => [m.name, m.action?.kind])).toEqual([
      ['a', 'create'],
      ['b', 'create'],
      ['c', 'create'],
    ]);
    expect(p.modules[2]!.action).toMatchObject({ start: false });
  });

  it('does nothing for running modules whose configuration matches (adoption, idempotence)', () => {
    const input = { desired: [spec('a'), spec('b')], observed: [seen('a'), seen('b')] };
    const first = plan(input);
    expect(first.modules.every((m) => m.action === undefined)).toBe(true);
    expect(first.removals).toEqual([]);
    expect(first.modules.map((m) => m.status.runtimeStatus)).toEqual(['running', 'running']);
    expect(plan(input)).toEqual(first);
  });

  it('replaces only the module whose configuration hash changed', () => {
    const p = plan({
      desired: [spec('a'), spec('b', { configHash: 'new' })],
      observed: [seen('a'), seen('b')],
    });
    expect(p.modules[0]!.action).toBeUndefined();
    expect(p.modules[1]!.action).toMatchObject({ kind: 'replace', id: 'id-b', start: true });
    expect(p.modules[1]!.record).toEqual({ configHash: 'new', restartCount: 0 });
  });

  it('keeps the old instance after a failed replace and retries only after the cool-off', () => {
    const failure = {
      configHash: 'new',
      reason: 'ErrImagePull' as const,
      message: 'pull access denied',
      terminal: false,
      atMs: NOW - 10,
      attempts: 1,
    };
    const input = {
      desired: [spec('b', { configHash: 'new' })],
      observed: [seen('b')],
      records: new Map([['b', { configHash: 'new', restartCount: 0, failure }]]),
    };
    const waiting = plan(input).modules[0]!;
    expect(waiting.action).toBeUndefined();
    expect(waiting.status).toEqual({
      runtimeStatus: 'backoff',
      reason: 'ErrImagePull',
      statusDescription: 'pull access denied',
    });
    expect(waiting.wakeAtMs).toBeGreaterThan(NOW);
    const retry = plan({ ...input, nowMs: waiting.wakeAtMs! }).modules[0]!;
    expect(retry.action).toMatchObject({ kind: 'replace', id: 'id-b', start: true });
    expect(retry.status.runtimeStatus).toBe('backoff');
  });

  it('removes orphans and duplicate instances', () => {
    const p = plan({
      desired: [spec('a')],
      observed: [
        seen('a', { id: 'old', state: 'exited', startedAt: new Date(NOW - 9000) }),
        seen('a'),
        seen('gone'),
      ],
    });
    expect(p.removals.map((r) => r.id).sort()).toEqual(['id-gone', 'old']);
    expect(p.modules[0]!.status.runtimeStatus).toBe('running');
  });

  it('stops a running module whose desired status is stopped, and leaves it stopped', () => {
    const running = plan({
      desired: [spec('a', { desiredStatus: 'stopped' })],
      observed: [seen('a')],
    });
    expect(running.modules[0]!.action).toMatchObject({ kind: 'stop' });
    const exited = plan({
      desired: [spec('a', { desiredStatus: 'stopped' })],
      observed: [seen('a', { state: 'exited', exitCode: 137 })],
    });
    expect(exited.modules[0]!.action).toBeUndefined();
    expect(exited.modules[0]!.status.runtimeStatus).toBe('stopped');
  });

  it('starts a module the agent itself stopped without counting a restart', () => {
    const p = plan({
      desired: [spec('a', { restartPolicy: 'never' })],
      observed: [seen('a', { state: 'exited', exitCode: 143 })],
      records: records({ a: { stoppedByAgent: true } }),
    });
    expect(p.modules[0]!.action).toMatchObject({ kind: 'start', restart: false });
  });

  describe('restart policies', () => {
    const exited = (exitCode: number) =>
      seen('a', { state: 'exited', exitCode, finishedAt: new Date(NOW - 60_000) });
    it.each([
      ['never', 0, false, 'stopped'],
      ['never', 1, false, 'failed'],
      ['on-failure', 0, false, 'stopped'],
      ['on-failure', 1, true, 'backoff'],
      ['on-unhealthy', 0, false, 'stopped'],
      ['on-unhealthy', 2, true, 'backoff'],
      ['always', 0, true, 'backoff'],
      ['always', 1, true, 'backoff'],
    ] as const)('%s with exit code %i restarts: %s', (policy, code, restarts, status) => {
      const p = plan({ desired: [spec('a', { restartPolicy: policy })], observed: [exited(code)] });
      expect(p.modules[0]!.action?.kind === 'start').toBe(restarts);
      expect(p.modules[0]!.status.runtimeStatus).toBe(status);
    });
  });

  it('waits out the cool-off min(10·2^n, 300) s after the exit, in backoff', () => {
    const finishedAt = new Date(NOW - 30_000);
    const input = (restartCount: number) => ({
      desired: [spec('a')],
      observed: [seen('a', { state: 'exited', exitCode: 1, finishedAt })],
      records: records({ a: { restartCount } }),
    });
    // n=1: 20 s cool-off, 30 s have passed → restart now.
    expect(plan(input(1)).modules[0]!.action).toMatchObject({ kind: 'start', restart: true });
    // n=2: 40 s cool-off → wait 10 more seconds.
    const waiting = plan({ ...input(2), settings: { ...settings, maxRestarts: 10 } });
    expect(waiting.modules[0]!.action).toBeUndefined();
    expect(waiting.modules[0]!.status).toMatchObject({
      runtimeStatus: 'backoff',
      reason: 'CrashLoopBackOff',
    });
    expect(waiting.wakeAtMs).toBe(finishedAt.getTime() + 40_000);
  });

  it('reports failed and stops restarting after the maximum', () => {
    const p = plan({
      desired: [spec('a')],
      observed: [seen('a', { state: 'exited', exitCode: 1, finishedAt: new Date(0) })],
      records: records({ a: { restartCount: 3 } }),
    });
    expect(p.modules[0]!.action).toBeUndefined();
    expect(p.modules[0]!.status.runtimeStatus).toBe('failed');
    expect(p.modules[0]!.status.statusDescription).toMatch(/gave up after 3 restarts/);
  });

  it('resets the restart count after 10 minutes of healthy running', () => {
    const young = plan({
      desired: [spec('a')],
      observed: [seen('a', { startedAt: new Date(NOW - 599_000) })],
      records: records({ a: { restartCount: 2 } }),
    });
    expect(young.modules[0]!.record.restartCount).toBe(2);
    expect(young.wakeAtMs).toBe(NOW + 1000);
    const old = plan({
      desired: [spec('a')],
      observed: [seen('a', { startedAt: new Date(NOW - 600_000) })],
      records: records({ a: { restartCount: 2 } }),
    });
    expect(old.modules[0]!.record.restartCount).toBe(0);
  });

  it('restarts an unhealthy module after the cool-off only for on-unhealthy and always', () => {
    const unhealthy = seen('a', { health: 'unhealthy' });
    const first = plan({
      desired: [spec('a', { restartPolicy: 'on-unhealthy' })],
      observed: [unhealthy],
    });
    expect(first.modules[0]!.status.runtimeStatus).toBe('unhealthy');
    expect(first.modules[0]!.record.unhealthySinceMs).toBe(NOW);
    expect(first.wakeAtMs).toBe(NOW + 10_000);
    const later = plan({
      desired: [spec('a', { restartPolicy: 'on-unhealthy' })],
      observed: [unhealthy],
      records: records({ a: { unhealthySinceMs: NOW - 10_000 } }),
    });
    expect(later.modules[0]!.action).toMatchObject({ kind: 'restart', id: 'id-a' });
    const onFailure = plan({
      desired: [spec('a', { restartPolicy: 'on-failure' })],
      observed: [unhealthy],
      records: records({ a: { unhealthySinceMs: NOW - 10_000 } }),
    });
    expect(onFailure.modules[0]!.action).toBeUndefined();
  });

  it('backs off a failed pull and retries it after the cool-off', () => {
    const failure = {
      configHash: 'h-a',
      reason: 'ErrImagePull' as const,
      message: 'unauthorized',
      terminal: false,
      atMs: NOW - 5000,
      attempts: 1,
    };
    const waiting = plan({ desired: [spec('a')], records: records({ a: { failure } }) });
    expect(waiting.modules[0]!.status).toEqual({
      runtimeStatus: 'backoff',
      reason: 'ErrImagePull',
      statusDescription: 'unauthorized',
    });
    expect(waiting.wakeAtMs).toBe(NOW + 5000);
    const due = plan({
      desired: [spec('a')],
      records: records({ a: { failure: { ...failure, atMs: NOW - 10_000 } } }),
    });
    expect(due.modules[0]!.action).toMatchObject({ kind: 'create', retry: true });
  });

  it('keeps a module whose options the runtime rejected failed until its configuration changes', () => {
    const failure = {
      configHash: 'h-a',
      reason: 'CreateContainerError' as const,
      message: 'invalid mount config',
      terminal: true,
      atMs: 0,
      attempts: 1,
    };
    const p = plan({ desired: [spec('a')], records: records({ a: { failure } }) });
    expect(p.modules[0]!.action).toBeUndefined();
    expect(p.modules[0]!.status).toMatchObject({
      runtimeStatus: 'failed',
      statusDescription: 'invalid mount config',
    });
    const changed = plan({
      desired: [spec('a', { configHash: 'fixed' })],
      records: records({ a: { failure } }),
    });
    expect(changed.modules[0]!.action).toMatchObject({ kind: 'create', retry: false });
  });
});
