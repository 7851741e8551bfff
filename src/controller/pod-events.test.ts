import type { ContainerStatus, PodStatus } from '../provider/pod-types.js';
import type { ModuleReport } from '../common/cloudlink/protocol.js';
import { podLifecycleEvents, pullingEvents, PULL_NEWS_MS } from './pod-events.js';

const base = { name: 'app', image: 'reg/app:1', imageID: '', ready: false, restartCount: 0 };
const status = (...cs: ContainerStatus[]): PodStatus => ({ containerStatuses: cs });
const reasons = (prev: PodStatus | undefined, next: PodStatus): string[] =>
  podLifecycleEvents('p', prev, next).map((e) => `${e.type}/${e.reason}`);

describe('podLifecycleEvents', () => {
  const creating: ContainerStatus = {
    ...base,
    state: { waiting: { reason: 'ContainerCreating' } },
  };
  const running: ContainerStatus = {
    ...base,
    imageID: 'sha256:1',
    containerID: 'docker://a',
    ready: true,
    state: { running: { startedAt: 't' } },
  };

  it('tells a new container as pulled, created and started', () => {
    expect(reasons(undefined, status(running))).toEqual([
      'Normal/Pulled',
      'Normal/Created',
      'Normal/Started',
    ]);
    expect(reasons(status(creating), status(running))).toEqual([
      'Normal/Pulled',
      'Normal/Created',
      'Normal/Started',
    ]);
  });

  it('tells nothing when only timestamps or nothing changed', () => {
    expect(reasons(status(running), status({ ...running }))).toEqual([]);
  });

  it('tells a crash loop as a restart and a back-off, once per restart', () => {
    const crashing: ContainerStatus = {
      ...running,
      ready: false,
      restartCount: 1,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: { terminated: { exitCode: 3 } },
    };
    expect(reasons(status(running), status(crashing))).toEqual([
      'Normal/Started',
      'Warning/BackOff',
    ]);
    expect(reasons(status(crashing), status(crashing))).toEqual([]);
    const again = { ...crashing, restartCount: 2 };
    expect(reasons(status(crashing), status(again))).toEqual(['Normal/Started', 'Warning/BackOff']);
  });

  it('tells image pull failures and back-off with the image and the device’s message', () => {
    const failed: ContainerStatus = {
      ...base,
      state: { waiting: { reason: 'ErrImagePull', message: 'manifest unknown' } },
    };
    const events = podLifecycleEvents('p', status(creating), status(failed));
    expect(events).toEqual([
      {
        type: 'Warning',
        reason: 'Failed',
        message: 'Failed to pull image "reg/app:1": manifest unknown',
      },
    ]);
    const backoff = { ...base, state: { waiting: { reason: 'ImagePullBackOff' } } };
    expect(reasons(status(failed), status(backoff))).toEqual(['Normal/BackOff']);
  });

  it('tells a running container that turned unhealthy, once', () => {
    const unhealthy = { ...running, ready: false };
    expect(reasons(status(running), status(unhealthy))).toEqual(['Warning/Unhealthy']);
    expect(reasons(status(unhealthy), status(unhealthy))).toEqual([]);
  });
});

describe('pullingEvents', () => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  const report = (name: string, pullStartedTimeUtc?: string): ModuleReport => ({
    name,
    image: `reg/${name}:2`,
    runtimeStatus: 'unknown',
    restartCount: 0,
    ...(pullStartedTimeUtc ? { pullStartedTimeUtc } : {}),
  });
  const modules = (...r: ModuleReport[]) => new Map(r.map((m) => [m.name, m]));

  it("tells each pull once, for the pod's own containers only", () => {
    const told = new Map<string, string>();
    const started = new Date(now - 1_000).toISOString();
    const reported = modules(report('app', started), report('other', started), report('idle'));
    expect(pullingEvents(['app', 'idle'], reported, told, now)).toEqual([
      { type: 'Normal', reason: 'Pulling', message: 'Pulling image "reg/app:2"' },
    ]);
    expect(pullingEvents(['app', 'idle'], reported, told, now)).toEqual([]);
    const again = new Date(now - 10).toISOString();
    expect(pullingEvents(['app'], modules(report('app', again)), told, now)).toHaveLength(1);
  });

  it('does not tell a pull that began long before it was first seen', () => {
    const told = new Map<string, string>();
    const old = new Date(now - PULL_NEWS_MS - 1).toISOString();
    expect(pullingEvents(['app'], modules(report('app', old)), told, now)).toEqual([]);
    expect(told.get('app')).toBe(old);
  });
});
