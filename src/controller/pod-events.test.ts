import type { ContainerStatus, PodStatus } from '../provider/pod-types.js';
import { podLifecycleEvents } from './pod-events.js';

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
