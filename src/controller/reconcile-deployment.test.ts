// The deployment reconciler against an in-memory API server: pod writes land in the pod cache,
// devices report through DeviceStates, so a whole rollout (batch, halt, rollback) runs in
// milliseconds with the real decision, pod planning and ControllerRevision bookkeeping.
import { pino } from 'pino';
import type { ModuleReport } from '../common/cloudlink/protocol.js';
import type { EdgeDeployment, EdgeDevice } from '../crds/index.js';
import type { ControllerContext, PodObject } from './context.js';
import { SPEC_HASH_ANNOTATION } from './deployment-pods.js';
import { DeviceStates } from './device-state.js';
import type { KubeClient, KubeObject, ResourceRef } from './kube/client.js';
import { deviceOutcome, positionOf, reconcileDeployment } from './reconcile-deployment.js';

type Dep = EdgeDeployment & KubeObject;
const NS = 'site';
const DEVICES = ['d0', 'd1', 'd2', 'd3'];

/** Pods, deployments and ControllerRevisions in memory; every write is logged and applied. */
class FakeKube {
  readonly pods = new Map<string, PodObject>();
  readonly revisions = new Map<string, KubeObject>();
  readonly writes: { verb: string; plural: string; name: string; body: unknown }[] = [];
  deployment!: Dep;
  #uid = 0;

  list = async (ref: ResourceRef): Promise<{ metadata: object; items: KubeObject[] }> => ({
    metadata: {},
    items: ref.plural === 'controllerrevisions' ? [...this.revisions.values()] : [],
  });

  create = async (ref: ResourceRef, body: KubeObject): Promise<KubeObject> => {
    this.writes.push({ verb: 'create', plural: ref.plural, name: body.metadata.name!, body });
    const stored = {
      ...body,
      metadata: {
        ...body.metadata,
        uid: `uid-${++this.#uid}`,
        creationTimestamp: new Date().toISOString(),
      },
    };
    if (ref.plural === 'pods') this.pods.set(body.metadata.name!, stored as PodObject);
    else this.revisions.set(body.metadata.name!, stored);
    return stored;
  };

  patch = async (ref: ResourceRef, name: string, body: any): Promise<KubeObject> => {
    this.writes.push({ verb: 'patch', plural: ref.plural, name, body });
    if (ref.plural === 'edgedeployments')
      this.deployment = { ...this.deployment, status: body.status };
    const pod = this.pods.get(name);
    if (ref.plural === 'pods' && pod) {
      const annotations = { ...pod.metadata.annotations, ...body.metadata?.annotations };
      for (const [k, v] of Object.entries(annotations)) if (v === null) delete annotations[k];
      const image = body.spec?.containers?.[0]?.image ?? pod.spec.containers[0]!.image;
      this.pods.set(name, {
        ...pod,
        metadata: { ...pod.metadata, annotations: annotations as Record<string, string> },
        spec: { ...pod.spec, containers: [{ ...pod.spec.containers[0]!, image }] },
      });
    }
    return { metadata: { name } };
  };

  delete = async (ref: ResourceRef, name: string): Promise<void> => {
    this.writes.push({ verb: 'delete', plural: ref.plural, name, body: undefined });
    this.pods.delete(name);
  };

  podWrites(): string[] {
    return this.writes
      .filter((w) => w.plural === 'pods')
      .map((w) => `${w.verb} ${w.name.replace(/^app-app-/, '')}`);
  }
}

interface Harness {
  ctx: ControllerContext;
  kube: FakeKube;
  events: string[];
  states: DeviceStates;
  apply(image: string, generation: number): void;
  /** Each device reports what its pod says, as a device that applied it would. */
  report(status: (device: string, image: string) => Partial<ModuleReport>): void;
  reconcile(): Promise<void>;
}

function harness(): Harness {
  const kube = new FakeKube();
  const events: string[] = [];
  const states = new DeviceStates();
  const devices: EdgeDevice[] = DEVICES.map((name) => ({
    apiVersion: 'kedge.io/v1alpha1',
    kind: 'EdgeDevice',
    metadata: { name, namespace: NS, labels: { fleet: 'a' } },
    spec: {},
  }));
  for (const d of DEVICES) states.get(`${NS}/${d}`).connected = true;
  const cache = <T>(items: () => T[]) =>
    ({
      get: (key: string) =>
        items().find((o: any) => `${o.metadata.namespace}/${o.metadata.name}` === key),
      list: items,
      indexed: () => [],
    }) as never;
  const ctx = {
    client: kube as unknown as KubeClient,
    log: pino({ level: 'silent' }),
    events: {
      record: (_o: KubeObject, type: string, reason: string) => events.push(`${type} ${reason}`),
    },
    states,
    informers: {
      devices: cache(() => devices),
      deployments: cache(() => [kube.deployment]),
      pods: cache(() => [...kube.pods.values()]),
    },
  } as unknown as ControllerContext;
  return {
    ctx,
    kube,
    events,
    states,
    apply: (image, generation) => {
      kube.deployment = {
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'EdgeDeployment',
        metadata: { name: 'app', namespace: NS, uid: 'dep-uid', generation },
        spec: {
          selector: { matchLabels: { fleet: 'a' } },
          rollout: { maxUnavailable: 1, failureThreshold: 1 },
          modules: [{ name: 'app', image }],
        },
        ...(kube.deployment?.status ? { status: kube.deployment.status } : {}),
      };
    },
    report: (status) => {
      for (const pod of kube.pods.values()) {
        const device = pod.metadata.labels!['kedge.io/device']!;
        const image = pod.spec.containers[0]!.image;
        states.get(`${NS}/${device}`).report = {
          desiredVersion: 1,
          outcome: { status: 'applied' },
          facts: {} as never,
          at: new Date().toISOString(),
          modules: [
            {
              name: 'app',
              image,
              restartCount: 0,
              runtimeStatus: 'running',
              specHash: pod.metadata.annotations![SPEC_HASH_ANNOTATION]!,
              ...status(device, image),
            },
          ],
        };
      }
    },
    reconcile: async () => {
      await reconcileDeployment(ctx, `${NS}/app`);
    },
  };
}

const rollout = (h: Harness) => h.kube.deployment.status!.rollout!;

describe('reconcileDeployment: rollouts', () => {
  it('updates one device at a time in place, halts on a failure and rolls it back', async () => {
    const h = harness();
    h.apply('app:1', 1);
    await h.reconcile(); // first spec: every device at once
    expect(h.kube.podWrites()).toEqual(DEVICES.map((d) => `create ${d}`));
    h.report(() => ({}));
    await h.reconcile();
    expect(rollout(h).phase).toBe('Complete');
    expect([...h.kube.revisions.keys()]).toEqual([`app-${rollout(h).stableRevision}`]);

    h.kube.writes.length = 0;
    h.apply('app-broken:2', 2);
    await h.reconcile();
    // One device, updated in place (the device turns its module into the new one).
    expect(h.kube.podWrites()).toEqual(['patch d0']);
    expect(h.kube.writes.find((w) => w.plural === 'pods')!.body).toMatchObject({
      spec: { containers: [{ name: 'app', image: 'app-broken:2' }] },
    });
    expect(rollout(h)).toMatchObject({ phase: 'Progressing', updatedCount: 1 });
    // d0 has not reported the new spec yet: it is not successful, and d1 waits.
    expect(h.kube.deployment.status!.reportedSuccessfulCount).toBe(0);
    await h.reconcile();
    expect(h.kube.podWrites()).toEqual(['patch d0']);

    h.report((_device, image) =>
      image === 'app-broken:2'
        ? { runtimeStatus: 'backoff', reason: 'ErrImagePull', statusDescription: 'denied' }
        : {},
    );
    await h.reconcile();
    expect(rollout(h)).toMatchObject({ phase: 'RollingBack', failedGeneration: 2 });
    expect(h.kube.podWrites()).toEqual(['patch d0', 'patch d0']);
    expect(h.kube.pods.get('app-app-d0')!.spec.containers[0]!.image).toBe('app:1');
    expect(h.events).toEqual(
      expect.arrayContaining(['Warning RolloutHalted', 'Warning RollingBack']),
    );
    expect(h.kube.deployment.status!.failingDevices).toEqual([
      { device: 'd0', module: 'app', reason: 'ErrImagePull', message: 'denied' },
    ]);

    h.report(() => ({}));
    await h.reconcile();
    const status = h.kube.deployment.status!;
    expect(rollout(h).phase).toBe('RolledBack');
    expect(status.reportedSuccessfulCount).toBe(4);
    const conditions = Object.fromEntries(status.conditions!.map((c) => [c.type, c]));
    expect(conditions.RolledBack).toMatchObject({ status: 'True', reason: 'RolledBack' });
    expect(conditions.Ready).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(conditions.Ready!.message).toMatch(/generation 2\) failed: .*d0\/app: ErrImagePull/);
    expect(h.events).toContain('Normal RolledBack');
    // d1–d3 were never written to.
    expect(h.kube.podWrites().filter((w) => !w.endsWith('d0'))).toEqual([]);

    // The same failed generation stays rolled back; a new generation starts a fresh rollout.
    await h.reconcile();
    expect(h.kube.podWrites()).toHaveLength(2);
    h.apply('app:3', 3);
    await h.reconcile();
    expect(h.kube.podWrites().at(-1)).toBe('patch d0');
    expect(rollout(h).phase).toBe('Progressing');
  });
});

describe('positionOf and deviceOutcome', () => {
  const pod = (hash: string, extra: Partial<KubeObject['metadata']> = {}): KubeObject => ({
    metadata: {
      name: 'p',
      labels: { 'kedge.io/module': 'app' },
      annotations: { [SPEC_HASH_ANNOTATION]: hash },
      ...extra,
    },
    spec: { containers: [{ name: 'app', image: `app:${hash}` }] },
  });

  it('places a device by the spec hashes of its pods', () => {
    expect(positionOf([], [pod('new')], [pod('old')])).toBe('none');
    expect(positionOf([pod('new')], [pod('new')], [pod('old')])).toBe('target');
    expect(positionOf([pod('old')], [pod('new')], [pod('old')])).toBe('stable');
    expect(positionOf([pod('older')], [pod('new')], [pod('old')])).toBe('other');
    const terminating = pod('old', { deletionTimestamp: 'now' });
    expect(positionOf([terminating], [pod('new')], [pod('old')])).toBe('changing');
  });

  it('counts a module only when it reports the spec hash of its pod', () => {
    const running = (specHash?: string): ModuleReport[] => [
      {
        name: 'app',
        image: 'app:new',
        runtimeStatus: 'running',
        restartCount: 0,
        ...(specHash ? { specHash } : {}),
      },
    ];
    expect(deviceOutcome(running('old'), 'd', [pod('new')])).toEqual({ outcome: 'pending' });
    expect(deviceOutcome(running('new'), 'd', [pod('new')])).toEqual({ outcome: 'successful' });
    // An agent that echoes no hash is judged by image.
    expect(deviceOutcome(running(), 'd', [pod('new')])).toEqual({ outcome: 'successful' });
    expect(deviceOutcome(running(), 'd', [pod('old')])).toEqual({ outcome: 'pending' });
    const failing: ModuleReport[] = [
      {
        name: 'app',
        runtimeStatus: 'backoff',
        reason: 'ErrImagePull',
        restartCount: 0,
        specHash: 'old',
      },
    ];
    expect(deviceOutcome(failing, 'd', [pod('new')])).toEqual({ outcome: 'pending' });
    expect(deviceOutcome(failing, 'd', [pod('old')]).outcome).toBe('failed');
  });
});
