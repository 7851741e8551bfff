import type { ControllerContext, PodObject } from './context.js';
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
} {
  const calls: string[] = [];
  const device = { metadata: { name: 'd1', namespace: 'ns' }, spec: {} } as KubeObject;
  const deployment = { metadata: { name: 'app', namespace: 'ns', generation: 1 } } as KubeObject;
  const deployments = fakeCache([deployment]);
  const pods = fakeCache<PodObject>();
  const ctx = {
    informers: {
      devices: fakeCache([device]).cache,
      deployments: deployments.cache,
      routes: fakeCache().cache,
      pods: pods.cache,
      nodes: fakeCache().cache,
      namespaces: fakeCache().cache,
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
  return { calls, deployments, pods };
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
});
