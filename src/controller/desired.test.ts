import { parseManifest } from '../common/manifest/index.js';
import type { EdgeDeployment, Route } from '../crds/index.js';
import { desiredModulePod } from './deployment-pods.js';
import {
  assignModules,
  buildModulesContent,
  deviceRoutes,
  routeText,
  type BoundPod,
} from './desired.js';
import { routeError } from './reconcile-route.js';

const deployment: EdgeDeployment = {
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDeployment',
  metadata: { name: 'app', namespace: 'ns', uid: 'u1' },
  spec: {
    selector: {},
    hub: { storeAndForward: { timeToLiveSecs: 60 } },
    modules: [
      {
        name: 'sensor',
        image: 'kedge-local/node-module:1',
        imagePullPolicy: 'Never',
        startupOrder: 1,
        env: [{ name: 'A', value: '1' }],
      },
      {
        name: 'filter',
        image: 'kedge-local/node-module:1',
        restartPolicy: 'on-unhealthy',
        desiredProperties: { threshold: 25 },
      },
    ],
    routes: [
      {
        name: 'to-filter',
        route:
          'FROM /messages/modules/sensor/outputs/* INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
      },
      { name: 'broken', route: 'FROM nowhere' },
    ],
  },
};

const route: Route = {
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'Route',
  metadata: { name: 'up', namespace: 'ns' },
  spec: {
    deviceSelector: {},
    from: '/messages/modules/filter/outputs/*',
    condition: '$body.temperature > 25',
    to: '$upstream',
    priority: 1,
  },
};

function bound(module: number, created: string, name?: string): BoundPod {
  const pod = desiredModulePod(
    deployment,
    deployment.spec.modules![module]!,
    'dev',
    'dev.ns.kedge',
  ) as BoundPod['pod'];
  pod.metadata.creationTimestamp = created;
  if (name) pod.metadata.name = name;
  return { pod, env: { [pod.spec.containers[0]!.name]: { A: '1' } }, registryCredentials: [] };
}

describe('device desired state', () => {
  it('builds a manifest that the device-side parser accepts', () => {
    const ownership = assignModules([
      bound(0, '2026-01-01T00:00:00Z'),
      bound(1, '2026-01-01T00:00:01Z'),
    ]);
    const content = buildModulesContent({ ownership, deployments: [deployment], routes: [route] });
    const parsed = parseManifest({ modulesContent: content });
    expect(parsed.modules.map((m) => [m.name, m.startupOrder, m.restartPolicy])).toEqual([
      ['sensor', 1, 'always'],
      ['filter', 4294967295, 'on-unhealthy'],
    ]);
    expect(parsed.modules[0]!.env).toEqual({ A: '1' });
    expect(parsed.modules[0]!.imagePullPolicy).toBe('never');
    expect(parsed.twins).toEqual({ filter: { threshold: 25 } });
    expect(Object.keys(parsed.hub.routes).sort()).toEqual(['app-to-filter', 'route-up']);
    expect(parsed.hub.routes['route-up']).toMatchObject({
      route: 'FROM /messages/modules/filter/outputs/* WHERE $body.temperature > 25 INTO $upstream',
      priority: 1,
    });
    expect(parsed.hub.storeAndForwardTimeToLiveSecs).toBe(60);
  });

  it('gives a module name to the oldest live pod and fails later ones', () => {
    const first = bound(0, '2026-01-01T00:00:00Z', 'first');
    const later = bound(0, '2026-01-01T00:00:05Z', 'later');
    const dying = bound(0, '2025-12-31T00:00:00Z', 'dying');
    dying.pod.metadata.deletionTimestamp = '2026-01-01T00:00:00Z';
    const { owners, clashes } = assignModules([later, dying, first]);
    expect(owners.get('sensor')!.pod.metadata.name).toBe('first');
    expect(clashes.map((c) => [c.pod.metadata.name, c.module, c.owner])).toEqual([
      ['later', 'sensor', 'first'],
    ]);
  });

  it('reports a $twin route with its position and leaves it out of the device hub', () => {
    const twin = "FROM /messages/* WHERE $twin.tags.site = 'lyon' INTO $upstream";
    expect(routeError(twin)).toEqual({
      message: expect.stringMatching(/^\$twin conditions are not supported/) as unknown,
      position: twin.indexOf('$twin'),
    });
    const d: EdgeDeployment = {
      apiVersion: 'kedge.io/v1alpha1',
      kind: 'EdgeDeployment',
      metadata: { name: 'd' },
      spec: {
        selector: {},
        routes: [
          { name: 'twin', route: twin },
          { name: 'up', route: 'FROM /messages/* INTO $upstream' },
        ],
      },
    };
    expect(Object.keys(deviceRoutes([d], []))).toEqual(['d-up']);
  });

  it('carries a moduleId from the EdgeDeployment to the device as its hub identity', () => {
    const sensor = { ...deployment.spec.modules![0]!, moduleId: 'SimulatedTemperatureSensor' };
    const pod = desiredModulePod(deployment, sensor, 'dev', 'dev.ns.kedge') as BoundPod['pod'];
    expect(pod.spec.containers[0]!.name).toBe('sensor');
    expect(pod.metadata.annotations!['kedge.io/module-id']).toBe('SimulatedTemperatureSensor');
    const ownership = assignModules([{ pod, env: {}, registryCredentials: [] }]);
    const content = buildModulesContent({ ownership, deployments: [deployment], routes: [] });
    const parsed = parseManifest({ modulesContent: content });
    expect(parsed.modules.map((m) => [m.name, m.moduleId])).toEqual([
      ['sensor', 'SimulatedTemperatureSensor'],
    ]);
    // Without one, the name is the id and the manifest stays plain IoT Edge.
    const plain = bound(1, '2026-01-01T00:00:00Z');
    expect(plain.pod.metadata.annotations!['kedge.io/module-id']).toBeUndefined();
  });

  it('fails a later pod whose module id is already taken on the device', () => {
    const withId = (module: number, created: string, name: string): BoundPod => {
      const b = bound(module, created, name);
      b.pod.metadata.annotations = {
        ...b.pod.metadata.annotations,
        'kedge.io/module-id': 'Shared',
      };
      return b;
    };
    const { clashes } = assignModules([
      withId(0, '2026-01-01T00:00:00Z', 'first'),
      withId(1, '2026-01-01T00:00:05Z', 'later'),
    ]);
    expect(clashes.map((c) => [c.pod.metadata.name, c.module, c.owner])).toEqual([
      ['later', 'filter (Shared)', 'first'],
    ]);
  });

  it('writes structured routes in IoT Edge syntax', () => {
    expect(routeText({ from: '/messages/*', to: '$upstream' })).toBe(
      'FROM /messages/* INTO $upstream',
    );
  });
});
