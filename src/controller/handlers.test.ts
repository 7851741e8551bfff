import type { ControllerContext, PodObject } from './context.js';
import { DeviceStates } from './device-state.js';
import { wireHandlers } from './handlers.js';
import type { InformerHandler } from './kube/informer.js';
import type { KubeObject } from './kube/client.js';

/** An informer stand-in: holds objects and lets the test fire events at the handlers. */
function fakeCache<T extends KubeObject>(
  items: T[] = [],
): {
  cache: ControllerContext['informers']['pods'];
  fire: InformerHandler<T>;
} {
  const handlers: InformerHandler<T>[] = [];
  const cache = {
    on: (h: InformerHandler<T>) => handlers.push(h),
    get: () => undefined,
    list: () => items,
    addIndex: () => undefined,
    indexed: () => [],
    synced: async () => undefined,
    start: () => undefined,
    stop: () => undefined,
  } as unknown as ControllerContext['informers']['pods'];
  return { cache, fire: (event, obj, old) => handlers.forEach((h) => h(event, obj, old)) };
}

function setup(): {
  calls: string[];
  deployments: ReturnType<typeof fakeCache<KubeObject>>;
  pods: ReturnType<typeof fakeCache<PodObject>>;
  keySecrets: ReturnType<typeof fakeCache<KubeObject>>;
  states: DeviceStates;
} {
  const calls: string[] = [];
  const device = { metadata: { name: 'd1', namespace: 'ns' }, spec: {} } as KubeObject;
  const deployment = { metadata: { name: 'app', namespace: 'ns', generation: 1 } } as KubeObject;
  const deployments = fakeCache([deployment]);
  const pods = fakeCache<PodObject>();
  const keySecrets = fakeCache<KubeObject>();
  const states = new DeviceStates();
  const ctx = {
    states,
    informers: {
      devices: fakeCache([device]).cache,
      deployments: deployments.cache,
      routes: fakeCache().cache,
      pods: pods.cache,
      nodes: fakeCache().cache,
      namespaces: fakeCache().cache,
      keySecrets: keySecrets.cache,
    },
    enqueue: {
      device: (k: string) => calls.push(`device ${k}`),
      desired: (k: string) => calls.push(`desired ${k}`),
      deployment: (k: string) => calls.push(`deployment ${k}`),
      route: (k: string) => calls.push(`route ${k}`),
      pod: (k: string) => calls.push(`pod ${k}`),
    },
  } as unknown as ControllerContext;
  wireHandlers(ctx);
  return { calls, deployments, pods, keySecrets, states };
}

describe('wireHandlers', () => {
  it('does not fan out an EdgeDeployment status write to every device', () => {
    const { calls, deployments } = setup();
    const old = { metadata: { name: 'app', namespace: 'ns', generation: 1 } };
    deployments.fire('update', { ...old, status: { reportedSuccessfulCount: 1 } }, old);
    expect(calls).toEqual([]);
    deployments.fire('update', { metadata: { ...old.metadata, generation: 2 } }, old);
    expect(calls).toEqual(['deployment ns/app', 'desired ns/d1']);
  });

  it('re-examines only the pod itself after a pod status write', () => {
    const { calls, pods } = setup();
    const pod = {
      metadata: { name: 'p', namespace: 'ns', labels: { 'kedge.io/deployment': 'app' } },
      spec: { nodeName: 'd1.ns.kedge', containers: [] },
    } as unknown as PodObject;
    pods.fire('update', { ...pod, status: { phase: 'Running' } }, pod);
    expect(calls).toEqual(['pod ns/p']);
    calls.length = 0;
    pods.fire('update', { ...pod, metadata: { ...pod.metadata, deletionTimestamp: 'now' } }, pod);
    expect(calls).toEqual(['pod ns/p', 'desired ns/d1', 'deployment ns/app']);
  });

  it('re-reads a device key at once when its Secret changes, but not after its own read', () => {
    const { calls, keySecrets, states } = setup();
    const secret = (rv: string, device = 'd1') =>
      ({
        metadata: {
          name: 'd1-kedge-key',
          namespace: 'ns',
          resourceVersion: rv,
          labels: { 'kedge.io/device-key-for': device },
        },
      }) as KubeObject;
    const state = states.get('ns/d1');
    state.keysReadAt = Date.now();
    state.keysSecretVersion = '5';
    keySecrets.fire('add', secret('5'));
    expect(calls).toEqual([]);
    keySecrets.fire('update', secret('6'), secret('5'));
    expect(calls).toEqual(['device ns/d1']);
    expect(state.keysReadAt).toBeUndefined();
    // Relabelled to another device: both look again.
    states.get('ns/d2');
    calls.length = 0;
    keySecrets.fire('update', secret('7', 'd2'), secret('6'));
    expect(calls.sort()).toEqual(['device ns/d1', 'device ns/d2']);
    calls.length = 0;
    keySecrets.fire('delete', secret('7', 'd2'));
    expect(calls).toEqual(['device ns/d2']);
  });
});
