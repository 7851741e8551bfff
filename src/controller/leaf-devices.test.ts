import { createCa, issueCertificate } from '../common/pki.js';
import type { EdgeDevice } from '../crds/index.js';
import { FakeDeviceBackend } from './backend/fake.js';
import { x509Credentials } from './device-keys.js';
import type { ControllerContext } from './context.js';
import { DeviceStates } from './device-state.js';
import type { KubeObject } from './kube/client.js';
import { leafIdentitiesOf, leafParentOf, parentProblem, reconcileLeaf } from './leaf-devices.js';
import { invokeSubresource } from './service-api/invoke.js';
import { c2dSubresource } from './service-api/c2d.js';
import { twinSubresource } from './service-api/twin.js';
import { leafTwinModule } from '../common/cloudplane/layout.js';

type Device = EdgeDevice & KubeObject;

const THUMBPRINT = 'AB'.repeat(32);

function device(name: string, spec: EdgeDevice['spec'] = {}, extra: Partial<Device> = {}): Device {
  return {
    apiVersion: 'kedge.io/v1alpha1',
    kind: 'EdgeDevice',
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, generation: 1 },
    spec,
    ...extra,
  };
}

/** A controller context over a fixed set of devices, recording enqueues and status patches. */
function setup(devices: Device[]): {
  ctx: ControllerContext;
  backend: FakeDeviceBackend;
  enqueued: string[];
  patches: { name: string; body: { status: Record<string, unknown> } }[];
} {
  const byKey = new Map(devices.map((d) => [`ns/${d.metadata.name}`, d]));
  const backend = new FakeDeviceBackend();
  const enqueued: string[] = [];
  const patches: { name: string; body: { status: Record<string, unknown> } }[] = [];
  const empty = { get: () => undefined, list: () => [] };
  const ctx = {
    backend,
    states: new DeviceStates(),
    informers: {
      devices: { get: (k: string) => byKey.get(k), list: () => [...byKey.values()] },
      nodes: empty,
    },
    client: {
      patch: (_ref: unknown, name: string, body: { status: Record<string, unknown> }) => {
        patches.push({ name, body });
        return Promise.resolve({});
      },
    },
    enqueue: {
      device: (k: string) => enqueued.push(`device ${k}`),
      desired: (k: string) => enqueued.push(`desired ${k}`),
    },
  } as unknown as ControllerContext;
  return { ctx, backend, enqueued, patches };
}

describe('leaf devices in the controller', () => {
  it("builds a gateway's leaf identities from the live leaves that name it", () => {
    const { ctx } = setup([
      device('gw'),
      device('other-gw'),
      device('sas-leaf', { parent: 'gw' }),
      device('x509-leaf', {
        parent: 'gw',
        authentication: { type: 'X509', x509: { thumbprint: THUMBPRINT } },
      }),
      device('no-key-yet', { parent: 'gw' }),
      device(
        'going',
        { parent: 'gw' },
        { metadata: { name: 'going', namespace: 'ns', deletionTimestamp: 'now' } },
      ),
      device('elsewhere', { parent: 'other-gw' }),
    ]);
    ctx.states.get('ns/sas-leaf').keys = ['a2V5LWtleS1rZXkta2V5LQ=='];
    ctx.states.get('ns/going').keys = ['a2V5LWtleS1rZXkta2V5LQ=='];
    expect(leafIdentitiesOf(ctx, ctx.informers.devices.get('ns/gw')!)).toEqual([
      { deviceId: 'sas-leaf', keys: ['a2V5LWtleS1rZXkta2V5LQ=='] },
      { deviceId: 'x509-leaf', thumbprints: ['ab'.repeat(32)] },
    ]);
    // A leaf serves no leaves of its own.
    expect(leafIdentitiesOf(ctx, ctx.informers.devices.get('ns/sas-leaf')!)).toEqual([]);
  });

  it('sends a CA-signed leaf its CA, and refuses a CA certificate that is none, with the reason', async () => {
    const ca = createCa('fleet-ca');
    const notCa = issueCertificate(ca, { commonName: 'x', usage: ['client'] });
    const signed = device('signed', {
      parent: 'gw',
      authentication: { type: 'X509', x509: { caCertificate: ca.certPem } },
    });
    const broken = device('broken', {
      parent: 'gw',
      authentication: { type: 'X509', x509: { caCertificate: notCa.certPem } },
    });
    const { ctx, patches } = setup([device('gw'), signed, broken]);
    expect(leafIdentitiesOf(ctx, ctx.informers.devices.get('ns/gw')!)).toEqual([
      { deviceId: 'signed', caCertificates: [ca.certPem] },
    ]);
    const load = () => Promise.resolve();
    await reconcileLeaf(ctx, signed, ctx.states.get('ns/signed'), load);
    await reconcileLeaf(ctx, broken, ctx.states.get('ns/broken'), load);
    const credentials = (name: string) =>
      (
        patches.find((p) => p.name === name)!.body.status.conditions as {
          type: string;
          status: string;
          reason: string;
          message: string;
        }[]
      ).find((c) => c.type === 'Credentials');
    expect(credentials('signed')).toMatchObject({ status: 'True', reason: 'X509CASigned' });
    expect(credentials('broken')).toMatchObject({
      status: 'False',
      reason: 'InvalidCACertificate',
      message: expect.stringMatching(/is not a CA certificate/),
    });
    const garbage = x509Credentials(
      device('g', { authentication: { type: 'X509', x509: { caCertificate: 'garbage' } } }),
    );
    expect(garbage).toMatchObject({
      refusal: { message: expect.stringMatching(/caCertificate is not a PEM certificate/) },
    });
  });

  it('names what is wrong with a parent that is missing, a leaf, or being deleted', () => {
    const { ctx } = setup([
      device('gw', {}, { metadata: { name: 'gw', namespace: 'ns', deletionTimestamp: 'now' } }),
      device('leaf-a', { parent: 'gw' }),
      device('leaf-b', { parent: 'leaf-a' }),
      device('orphan', { parent: 'nowhere' }),
    ]);
    const get = (n: string): Device => ctx.informers.devices.get(`ns/${n}`)!;
    expect(parentProblem(ctx, get('orphan'))?.reason).toBe('ParentNotFound');
    expect(parentProblem(ctx, get('orphan'))?.message).toMatch(
      /nowhere does not exist in namespace ns/,
    );
    expect(parentProblem(ctx, get('leaf-b'))?.reason).toBe('ParentIsLeaf');
    expect(parentProblem(ctx, get('leaf-a'))?.reason).toBe('ParentDeleting');
  });

  it('reconciles an X.509 leaf: no cloud credentials, parent re-pushed once, Connected when the parent reports it', async () => {
    const leaf = device('cam', {
      parent: 'gw',
      authentication: { type: 'X509', x509: { thumbprint: THUMBPRINT } },
    });
    const { ctx, backend, enqueued, patches } = setup([device('gw'), leaf]);
    const gw = ctx.states.get('ns/gw');
    gw.connected = true;
    gw.report = { leaves: ['cam'] } as never;
    const state = ctx.states.get('ns/cam');
    let keyLoads = 0;
    const loadKeys = (): Promise<void> => {
      keyLoads++;
      return Promise.resolve();
    };
    expect(await reconcileLeaf(ctx, leaf, state, loadKeys)).toEqual({});
    expect(keyLoads).toBe(0);
    expect(backend.credentials.get('ns/cam')).toEqual({ keys: [] });
    expect(enqueued).toEqual(['desired ns/gw']);
    expect(patches).toHaveLength(1);
    const status = patches[0]!.body.status;
    expect(status).toMatchObject({ phase: 'Connected', parent: 'gw', nodeName: null });
    const conditions = status.conditions as { type: string; status: string; reason: string }[];
    expect(conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'ConnectedThroughParent',
    });

    // Nothing changed: no second push, no second write.
    await reconcileLeaf(ctx, { ...leaf, status: status }, state, loadKeys);
    expect(enqueued).toEqual(['desired ns/gw']);
    expect(patches).toHaveLength(1);

    // The parent stops reporting it: Disconnected, with the reason.
    gw.report = { leaves: [] } as never;
    await reconcileLeaf(ctx, { ...leaf, status: status }, state, loadKeys);
    expect(patches[1]!.body.status).toMatchObject({ phase: 'Disconnected' });
  });

  it('re-pushes both parents when a leaf moves, and the parent when its key changes', async () => {
    const leaf = device('s1', { parent: 'gw' });
    const { ctx, enqueued } = setup([device('gw'), device('gw2'), leaf]);
    const state = ctx.states.get('ns/s1');
    let key = 'a2V5LWtleS1rZXkta2V5LQ==';
    const loadKeys = (): Promise<void> => {
      state.keys = [key];
      return Promise.resolve();
    };
    await reconcileLeaf(ctx, leaf, state, loadKeys);
    expect(enqueued).toEqual(['desired ns/gw']);
    key = 'b3RoZXItb3RoZXItb3RoZXI=';
    await reconcileLeaf(ctx, leaf, state, loadKeys);
    expect(enqueued).toEqual(['desired ns/gw', 'desired ns/gw']);
    await reconcileLeaf(ctx, device('s1', { parent: 'gw2' }), state, loadKeys);
    expect(enqueued.slice(2)).toEqual(['desired ns/gw2', 'desired ns/gw']);
  });

  it('gives a leaf whose parent is missing Ready=False with the reason, and asks for no retry', async () => {
    const leaf = device('lost', { parent: 'nowhere' });
    const { ctx, patches } = setup([leaf]);
    const result = await reconcileLeaf(ctx, leaf, ctx.states.get('ns/lost'), () =>
      Promise.resolve(),
    );
    expect(result).toEqual({});
    const status = patches[0]!.body.status;
    expect(status.parent).toBeUndefined();
    const ready = (
      status.conditions as { type: string; status: string; reason: string; message: string }[]
    ).find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'ParentNotFound' });
    expect(ready?.message).toMatch(/gateway EdgeDevice nowhere does not exist/);
  });

  it('sends service-API methods and C2D for a leaf EdgeDevice to its parent, with the leaf id', async () => {
    const { ctx } = setup([
      device('gw'),
      device('s1', { parent: 'gw' }),
      device('orphan', { parent: 'nowhere' }),
    ]);
    const leafOf = (ns: string, d: string) => leafParentOf(ctx, ns, d);
    const calls: unknown[] = [];
    const invoke = invokeSubresource((ns, d, call) => {
      calls.push({ ns, d, call });
      return Promise.resolve({ status: 200, payload: 'pong' });
    }, leafOf);
    const request = (d: string, body: object, method = 'POST') =>
      ({
        namespace: 'ns',
        device: d,
        method,
        body: JSON.stringify(body),
        query: new URLSearchParams(),
      }) as never;
    expect((await invoke.handle(request('s1', { methodName: 'ping' }))).status).toBe(200);
    expect(calls).toEqual([
      {
        ns: 'ns',
        d: 'gw',
        call: { module: '', leaf: 's1', method: 'ping', payload: null, timeoutSecs: 30 },
      },
    ]);
    const withModule = await invoke.handle(request('s1', { methodName: 'ping', moduleId: 'm' }));
    expect(withModule).toMatchObject({ status: 400 });
    expect(JSON.stringify(withModule.body)).toMatch(/leaf device, which has no modules/);
    const orphan = await invoke.handle(request('orphan', { methodName: 'ping' }));
    expect(orphan.status).toBe(409);
    expect(JSON.stringify(orphan.body)).toMatch(
      /leaf device orphan: gateway EdgeDevice nowhere does not exist/,
    );
    // A gateway still needs its module named.
    expect((await invoke.handle(request('gw', { methodName: 'ping' }))).status).toBe(400);

    const sent: unknown[] = [];
    const c2d = c2dSubresource((_ns, d, message) => {
      sent.push({ d, leaf: message.leaf, to: message.properties['$.to'] });
      return Promise.resolve();
    }, leafOf);
    expect((await c2d.handle(request('s1', { payload: 'hi' }))).status).toBe(202);
    expect(sent).toEqual([{ d: 'gw', leaf: 's1', to: '/devices/s1/messages/devicebound' }]);
    const wrongLeaf = await c2d.handle(request('s1', { payload: 'hi', deviceId: 'other' }));
    expect(wrongLeaf.status).toBe(400);

    const twins = new FakeDeviceBackend();
    const leafKey = `ns/gw/${leafTwinModule('s1')}`;
    twins.twins.set(leafKey, { module: leafTwinModule('s1'), version: 2, properties: { fw: '1' } });
    const twin = twinSubresource(twins, leafOf);
    const got = await twin.handle(request('s1', {}, 'GET'));
    expect(got).toMatchObject({
      status: 200,
      body: {
        kind: 'DeviceTwin',
        deviceId: 's1',
        properties: { reported: { fw: '1', $version: 2 }, desired: { $version: 0 } },
      },
    });
    // A desired patch for the leaf is kept beside its parent's module twins.
    const patched = await twin.handle(
      request('s1', { properties: { desired: { interval: 5 } } }, 'PATCH'),
    );
    expect(patched).toMatchObject({
      status: 200,
      body: { properties: { desired: { interval: 5, $version: 1 } } },
    });
    expect(twins.desiredTwins.get(leafKey)?.properties).toEqual({ interval: 5 });
  });
});
