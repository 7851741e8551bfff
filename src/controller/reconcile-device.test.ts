import { pino } from 'pino';
import { leafTwinModule } from '../common/cloudplane/layout.js';
import { createCa, issueCertificate } from '../common/pki.js';
import type { EdgeDevice } from '../crds/index.js';
import { FINALIZER } from '../provider/naming.js';
import { FakeDeviceBackend } from './backend/fake.js';
import type { ControllerContext } from './context.js';
import { DeviceStates } from './device-state.js';
import type { KubeClient, KubeObject, ResourceRef } from './kube/client.js';
import { reconcileDevice } from './reconcile-device.js';

type Device = EdgeDevice & KubeObject;

/** An in-memory API server for one reconcile path: objects by resource and name, every write logged. */
class FakeKube {
  readonly objects = new Map<string, KubeObject>();
  readonly writes: { verb: string; plural: string; name: string; body: unknown }[] = [];

  #key(ref: ResourceRef, name: string): string {
    return `${ref.plural}/${ref.namespace ?? ''}/${name}`;
  }

  find = async (ref: ResourceRef, name: string): Promise<KubeObject | undefined> =>
    this.objects.get(this.#key(ref, name));

  create = async (ref: ResourceRef, body: KubeObject): Promise<KubeObject> => {
    this.writes.push({ verb: 'create', plural: ref.plural, name: body.metadata.name!, body });
    const stored = { ...body, metadata: { ...body.metadata, uid: `uid-${body.metadata.name}` } };
    this.objects.set(this.#key(ref, body.metadata.name!), stored);
    return stored;
  };

  patch = async (ref: ResourceRef, name: string, body: unknown): Promise<KubeObject> => {
    this.writes.push({ verb: 'patch', plural: ref.plural, name, body });
    return { metadata: { name } };
  };

  delete = async (ref: ResourceRef, name: string): Promise<void> => {
    this.writes.push({ verb: 'delete', plural: ref.plural, name, body: undefined });
    this.objects.delete(this.#key(ref, name));
  };
}

interface Harness {
  ctx: ControllerContext;
  kube: FakeKube;
  /** The watched key Secrets (the informer's cache), by `namespace/name`. */
  keySecrets: Map<string, KubeObject>;
  backend: FakeDeviceBackend;
  events: string[];
  setDevice(device: Device): void;
}

function harness(): Harness {
  const kube = new FakeKube();
  const backend = new FakeDeviceBackend();
  const events: string[] = [];
  const devices = new Map<string, Device>();
  const keySecrets = new Map<string, KubeObject>();
  const cache = <T extends KubeObject>(items: Map<string, T>) =>
    ({
      get: (key: string) => items.get(key),
      list: () => [...items.values()],
      indexed: () => [],
    }) as never;
  const ctx = {
    client: kube as unknown as KubeClient,
    log: pino({ level: 'silent' }),
    events: {
      record: (_o: KubeObject, type: string, reason: string) => events.push(`${type} ${reason}`),
    },
    states: new DeviceStates(),
    backend,
    kubelet: { address: '127.0.0.1', port: 10250 },
    informers: {
      devices: cache(devices),
      nodes: cache(new Map()),
      pods: cache(new Map()),
      keySecrets: cache(keySecrets),
    },
    enqueue: { device: () => undefined, pod: () => undefined },
  } as unknown as ControllerContext;
  return {
    ctx,
    kube,
    keySecrets,
    backend,
    events,
    setDevice: (d) => devices.set(`${d.metadata.namespace}/${d.metadata.name}`, d),
  };
}

const device = (spec: EdgeDevice['spec'], generation = 1): Device => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDevice',
  metadata: {
    name: 'cam-1',
    namespace: 'site',
    uid: 'device-uid',
    generation,
    finalizers: [FINALIZER],
  },
  spec,
});

/** The conditions of the last status the reconciler wrote. */
function lastConditions(
  kube: FakeKube,
): Record<string, { status: string; reason: string; message: string }> {
  const write = kube.writes.filter((w) => w.plural === 'edgedevices').at(-1);
  const conditions = (write?.body as { status: { conditions: any[] } }).status.conditions;
  return Object.fromEntries(conditions.map((c) => [c.type, c]));
}

describe('reconcileDevice: X.509 devices', () => {
  it('gives the gateways the thumbprint, creates no key Secret and says what it accepts', async () => {
    const h = harness();
    h.setDevice(device({ authentication: { type: 'X509', x509: { thumbprint: 'A'.repeat(64) } } }));
    await expect(reconcileDevice(h.ctx, 'site/cam-1')).resolves.toEqual({});
    expect(h.backend.credentials.get('site/cam-1')).toEqual({
      keys: [],
      thumbprints: ['a'.repeat(64)],
    });
    expect(h.kube.writes.some((w) => w.plural === 'secrets')).toBe(false);
    expect(lastConditions(h.kube).Credentials).toMatchObject({
      status: 'True',
      reason: 'X509Thumbprint',
      message: 'the gateways accept a client certificate with the declared SHA-256 thumbprint',
    });
  });

  it('refuses a CA certificate that is none with Ready=False, one Event and no retry', async () => {
    const h = harness();
    const notCa = issueCertificate(createCa('ca'), { commonName: 'cam-1', usage: ['client'] });
    h.setDevice(
      device({ authentication: { type: 'X509', x509: { caCertificate: notCa.certPem } } }),
    );
    await expect(reconcileDevice(h.ctx, 'site/cam-1')).resolves.toEqual({});
    const ready = lastConditions(h.kube).Ready!;
    expect(ready).toMatchObject({ status: 'False', reason: 'InvalidCACertificate' });
    expect(ready.message).toMatch(/caCertificate is not a CA certificate/);
    expect(h.backend.credentials.get('site/cam-1')).toEqual({ keys: [] });
    expect(h.events).toEqual(['Warning InvalidCACertificate']);
    const writes = h.kube.writes.length;
    await expect(reconcileDevice(h.ctx, 'site/cam-1')).resolves.toEqual({});
    expect(h.kube.writes.slice(writes)).toEqual([]);
    expect(h.events).toHaveLength(1);
  });

  it('gives a CA-signed device its CA, and a key once its spec switches to SymmetricKey', async () => {
    const h = harness();
    const ca = createCa('fleet');
    h.setDevice(device({ authentication: { type: 'X509', x509: { caCertificate: ca.certPem } } }));
    await reconcileDevice(h.ctx, 'site/cam-1');
    expect(h.backend.credentials.get('site/cam-1')).toEqual({
      keys: [],
      caCertificates: [ca.certPem],
    });
    expect(lastConditions(h.kube).Credentials).toMatchObject({ reason: 'X509CASigned' });
    h.setDevice(device({ authentication: { type: 'SymmetricKey' } }, 2));
    await reconcileDevice(h.ctx, 'site/cam-1');
    expect(h.kube.writes.some((w) => w.verb === 'create' && w.plural === 'secrets')).toBe(true);
    expect(h.backend.credentials.get('site/cam-1')?.keys).toHaveLength(1);
    expect(h.backend.credentials.get('site/cam-1')?.caCertificates).toBeUndefined();
    expect(lastConditions(h.kube).Credentials).toMatchObject({
      status: 'True',
      reason: 'KeyLoaded',
    });
  });
});

describe('reconcileDevice: device keys', () => {
  const keySecret = (key: string, resourceVersion: string): KubeObject => ({
    metadata: {
      name: 'cam-1-kedge-key',
      namespace: 'site',
      resourceVersion,
      labels: { 'kedge.io/device-key-for': 'cam-1' },
    },
    data: { primaryKey: Buffer.from(key).toString('base64') },
  });
  const KEY_1 = Buffer.alloc(32, 1).toString('base64');
  const KEY_2 = Buffer.alloc(32, 2).toString('base64');

  it('reads a watched key Secret from the cache, and again only when it changed', async () => {
    const h = harness();
    h.setDevice(device({}));
    h.keySecrets.set('site/cam-1-kedge-key', keySecret(KEY_1, '10'));
    await reconcileDevice(h.ctx, 'site/cam-1');
    expect(h.backend.credentials.get('site/cam-1')?.keys).toEqual([KEY_1]);
    expect(h.kube.writes.some((w) => w.plural === 'secrets')).toBe(false);
    h.keySecrets.set('site/cam-1-kedge-key', keySecret(KEY_2, '11'));
    await reconcileDevice(h.ctx, 'site/cam-1');
    expect(h.backend.credentials.get('site/cam-1')?.keys).toEqual([KEY_2]);
  });

  it('labels a Secret it generates for the watch', async () => {
    const h = harness();
    h.setDevice(device({}));
    await reconcileDevice(h.ctx, 'site/cam-1');
    const created = h.kube.writes.find((w) => w.verb === 'create' && w.plural === 'secrets');
    expect((created?.body as KubeObject).metadata.labels).toMatchObject({
      'kedge.io/device-key-for': 'cam-1',
    });
  });

  it("forgets a deleted leaf's twin, kept under its parent", async () => {
    const h = harness();
    const leaf = device({ parent: 'gw' });
    h.setDevice({ ...leaf, metadata: { ...leaf.metadata, deletionTimestamp: 'now' } });
    const twinKey = `site/gw/${leafTwinModule('cam-1')}`;
    h.backend.twins.set(twinKey, { module: leafTwinModule('cam-1'), version: 1, properties: {} });
    h.backend.desiredTwins.set(twinKey, {
      module: leafTwinModule('cam-1'),
      version: 1,
      properties: {},
    });
    await reconcileDevice(h.ctx, 'site/cam-1');
    expect(h.backend.twins.has(twinKey)).toBe(false);
    expect(h.backend.desiredTwins.has(twinKey)).toBe(false);
  });
});
