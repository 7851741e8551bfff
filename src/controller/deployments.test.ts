import type { EdgeDeployment, EdgeModule } from '../crds/index.js';
import { desiredModulePod, moduleHash, podName } from './deployment-pods.js';
import { planPods } from './reconcile-deployment.js';
import { resolveLayers } from './layering.js';
import { matchesSelector } from './selector.js';

const deployment = (
  name: string,
  priority: number | undefined,
  modules: string[],
): EdgeDeployment => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDeployment',
  metadata: { name, namespace: 'ns', uid: `uid-${name}` },
  spec: {
    selector: {},
    priority,
    modules: modules.map((m) => ({ name: m, image: `${name}/${m}:1` })),
  },
});

describe('matchesSelector', () => {
  it('implements matchLabels and every operator; empty matches all', () => {
    const labels = { site: 'berlin', tier: 'prod' };
    expect(matchesSelector({}, labels)).toBe(true);
    expect(matchesSelector({ matchLabels: { site: 'berlin' } }, labels)).toBe(true);
    expect(matchesSelector({ matchLabels: { site: 'paris' } }, labels)).toBe(false);
    expect(
      matchesSelector(
        { matchExpressions: [{ key: 'site', operator: 'In', values: ['paris', 'berlin'] }] },
        labels,
      ),
    ).toBe(true);
    expect(
      matchesSelector(
        { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['prod'] }] },
        labels,
      ),
    ).toBe(false);
    expect(
      matchesSelector(
        { matchExpressions: [{ key: 'gpu', operator: 'NotIn', values: ['x'] }] },
        labels,
      ),
    ).toBe(true);
    expect(
      matchesSelector({ matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }, labels),
    ).toBe(false);
    expect(
      matchesSelector({ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }, labels),
    ).toBe(true);
    expect(matchesSelector(undefined, labels)).toBe(false);
  });
});

describe('resolveLayers', () => {
  it('lets the higher priority win a module name, ties going to the name that sorts first', () => {
    const base = deployment('base', 0, ['sensor', 'filter']);
    const hotfix = deployment('hotfix', 10, ['filter']);
    const twin = deployment('aaa-twin', 0, ['sensor']);
    const { winners, lost } = resolveLayers([base, hotfix, twin]);
    expect(winners.get('filter')!.deployment.metadata.name).toBe('hotfix');
    expect(winners.get('sensor')!.deployment.metadata.name).toBe('aaa-twin');
    expect(lost).toEqual([
      { deployment: 'base', module: 'sensor', winner: 'aaa-twin' },
      { deployment: 'base', module: 'filter', winner: 'hotfix' },
    ]);
  });
});

describe('desiredModulePod', () => {
  it('binds to the node, tolerates offline without limit, and is owned by the deployment', () => {
    const d = deployment('app', 0, ['sensor']);
    d.spec.modules![0] = {
      ...d.spec.modules![0]!,
      restartPolicy: 'on-unhealthy',
      desiredProperties: { a: 1 },
      startupOrder: 3,
    };
    const pod = desiredModulePod(d, d.spec.modules![0], 'dev1', 'dev1.ns.kedge') as any;
    expect(pod.metadata.name).toBe('app-sensor-dev1');
    expect(pod.spec.nodeName).toBe('dev1.ns.kedge');
    expect(pod.spec.tolerations).toContainEqual({
      key: 'node.kubernetes.io/unreachable',
      operator: 'Exists',
      effect: 'NoExecute',
    });
    expect(pod.spec.tolerations.every((t: any) => t.tolerationSeconds === undefined)).toBe(true);
    expect(pod.metadata.ownerReferences[0]).toMatchObject({
      kind: 'EdgeDeployment',
      name: 'app',
      uid: 'uid-app',
      controller: true,
    });
    expect(pod.metadata.annotations).toMatchObject({
      'kedge.io/restart-policy': 'on-unhealthy',
      'kedge.io/startup-order': '3',
      'kedge.io/desired-properties': '{"a":1}',
    });
  });

  it('changes the spec hash only when the module changes', () => {
    const d = deployment('app', 0, ['sensor']);
    const before = moduleHash(d, d.spec.modules![0]!);
    expect(moduleHash(d, { ...d.spec.modules![0]! })).toBe(before);
    expect(moduleHash(d, { ...d.spec.modules![0]!, env: [{ name: 'X', value: '1' }] })).not.toBe(
      before,
    );
  });

  it('keeps the spec hash when only desiredProperties change, so the pod is kept', () => {
    const d = deployment('app', 0, ['sensor']);
    const plain = d.spec.modules![0]!;
    const before = moduleHash(d, plain);
    expect(moduleHash(d, { ...plain, desiredProperties: { threshold: 30 } })).toBe(before);
    expect(
      moduleHash(d, { ...plain, desiredProperties: { threshold: 31 }, image: 'x:2' }),
    ).not.toBe(before);
  });

  it('plans a desired-properties change as an annotation patch, a container change as a new pod', () => {
    const d = deployment('app', 0, ['sensor']);
    const module: EdgeModule = {
      ...d.spec.modules![0]!,
      desiredProperties: { threshold: 30, mode: 'a' },
    };
    const running = desiredModulePod(d, module, 'dev1', 'dev1.ns.kedge') as any;
    const wantPod = (m: EdgeModule): Map<string, any> =>
      new Map([[running.metadata.name, desiredModulePod(d, m, 'dev1', 'dev1.ns.kedge')]]);
    expect(planPods([running], wantPod(module))).toEqual({
      doomed: [],
      missing: [],
      patched: [],
      refreshed: [],
      pending: false,
    });
    expect(
      planPods([running], wantPod({ ...module, desiredProperties: { threshold: 31 } })),
    ).toEqual({
      doomed: [],
      missing: [],
      patched: [],
      refreshed: [
        {
          name: 'app-sensor-dev1',
          annotations: { 'kedge.io/desired-properties': '{"threshold":31}' },
        },
      ],
      pending: false,
    });
    const without = { ...module, desiredProperties: undefined };
    expect(planPods([running], wantPod(without)).refreshed).toEqual([
      { name: 'app-sensor-dev1', annotations: { 'kedge.io/desired-properties': null } },
    ]);
    // A new image is an in-place update: the device turns the old module into the new one.
    const updated = planPods([running], wantPod({ ...module, image: 'app/sensor:2' }));
    expect(updated).toMatchObject({ doomed: [], refreshed: [], pending: false });
    expect(updated.patched).toEqual([
      {
        name: 'app-sensor-dev1',
        patch: {
          metadata: {
            annotations: expect.objectContaining({
              'kedge.io/spec-hash': expect.any(String),
              'kedge.io/restart-policy': null,
            }),
          },
          spec: { containers: [{ name: 'sensor', image: 'app/sensor:2' }] },
        },
      },
    ]);
    // New env needs a new pod.
    const env = [{ name: 'MODE', value: 'fast' }];
    const replaced = planPods([running], wantPod({ ...module, env }));
    expect(replaced).toMatchObject({ doomed: ['app-sensor-dev1'], patched: [], pending: true });
    const terminating = { ...running, metadata: { ...running.metadata, deletionTimestamp: 'x' } };
    const later = wantPod({ ...module, desiredProperties: {} });
    expect(planPods([terminating], later).refreshed).toEqual([]);
  });

  it('keeps pod names within 253 characters', () => {
    const name = podName('d'.repeat(200), 'm'.repeat(60), 'x'.repeat(100));
    expect(name.length).toBe(253);
    expect(podName('d'.repeat(200), 'm'.repeat(60), 'y'.repeat(100))).not.toBe(name);
  });
});
