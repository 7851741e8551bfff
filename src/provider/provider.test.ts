import type { ModuleReport } from '../common/cloudlink/protocol.js';
import type { EdgeDevice } from '../crds/index.js';
import { deviceForNode, nodeNameFor } from './naming.js';
import { buildNode, nodeConditions } from './node.js';
import { podStatusFromModules } from './pod-status.js';
import type { PodSpec } from './pod-types.js';
import { registryCredentialsFrom, resolveContainerEnv, type ObjectLookup } from './resolve.js';
import { parseQuantity, podToModules } from './translate.js';

const device: EdgeDevice = {
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDevice',
  metadata: { name: 'sensor-1', namespace: 'factory', labels: { site: 'berlin' } },
  spec: { nodeLabels: { zone: 'a' }, taints: [{ key: 'gpu', effect: 'NoSchedule' }] },
};

describe('node naming', () => {
  it('round-trips device names, dots included', () => {
    expect(nodeNameFor('factory', 'sensor-1')).toBe('sensor-1.factory.kedge');
    expect(deviceForNode('a.b.factory.kedge')).toEqual({ namespace: 'factory', device: 'a.b' });
    expect(deviceForNode('worker-1')).toBeUndefined();
  });
});

describe('buildNode', () => {
  it('carries labels, the edge taint, capacity, nodeInfo and the kubelet endpoint', () => {
    const facts = {
      os: 'linux',
      arch: 'arm64',
      cpus: 4,
      memoryBytes: 8 * 1024 ** 3,
      diskBytes: 64 * 1024 ** 3,
      containerRuntimeVersion: 'docker://20.10.24',
      agentVersion: '0.1.0',
    };
    const node = buildNode(device, facts, { address: '127.0.0.1', port: 10250 }) as any;
    expect(node.metadata.name).toBe('sensor-1.factory.kedge');
    expect(node.metadata.labels).toMatchObject({
      site: 'berlin',
      zone: 'a',
      'kubernetes.io/role': 'edge',
      type: 'virtual-kubelet',
      'kedge.io/device': 'sensor-1',
      'kubernetes.io/arch': 'arm64',
    });
    expect(node.spec.taints).toEqual([
      { key: 'kedge.io/edge', value: 'true', effect: 'NoSchedule' },
      { key: 'gpu', value: undefined, effect: 'NoSchedule' },
    ]);
    expect(node.status.capacity).toEqual({
      cpu: '4',
      memory: '8388608Ki',
      'ephemeral-storage': '67108864Ki',
      pods: '110',
    });
    expect(node.status.nodeInfo).toMatchObject({
      kubeletVersion: 'v0.1.0',
      containerRuntimeVersion: 'docker://20.10.24',
      architecture: 'arm64',
    });
    expect(node.status.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 10250 } });
  });

  it('advertises only the controller address, whatever hostname the device reports', () => {
    const facts = {
      os: 'linux',
      arch: 'amd64',
      cpus: 1,
      memoryBytes: 1,
      diskBytes: 1,
      containerRuntimeVersion: 'docker://27.0.0',
      agentVersion: '0.1.0',
      hostname: 'kube-apiserver.attacker.example',
    };
    const node = buildNode(device, facts, { address: '10.0.0.5', port: 10250 }) as any;
    expect(node.status.addresses).toEqual([
      { type: 'InternalIP', address: '10.0.0.5' },
      { type: 'Hostname', address: '10.0.0.5' },
    ]);
  });

  it('drops reserved label keys from the EdgeDevice labels and nodeLabels', () => {
    const claiming: EdgeDevice = {
      ...device,
      metadata: {
        ...device.metadata,
        labels: {
          site: 'berlin',
          'node-role.kubernetes.io/control-plane': '',
          'node-restriction.kubernetes.io/pci': 'true',
          'kubernetes.io/hostname': 'worker-1',
          'topology.kubernetes.io/zone': 'eu-1',
        },
      },
      spec: { nodeLabels: { 'k8s.io/x': 'y', 'example.com/ok': 'y' } },
    };
    const labels = buildNode(claiming, undefined, { address: '10.0.0.5', port: 1 }).metadata
      .labels!;
    expect(
      Object.keys(labels)
        .filter((k) => /kubernetes\.io|k8s\.io/.test(k))
        .sort(),
    ).toEqual([
      'kubernetes.io/hostname',
      'kubernetes.io/os',
      'kubernetes.io/role',
      'node-role.kubernetes.io/edge',
      'topology.kubernetes.io/zone',
    ]);
    expect(labels['kubernetes.io/hostname']).toBe('sensor-1.factory.kedge');
    expect(labels['example.com/ok']).toBe('y');
  });

  it('is Ready only while the device is connected', () => {
    const now = '2026-01-01T00:00:00Z';
    expect(nodeConditions({ connected: true }, now)[0]).toMatchObject({
      type: 'Ready',
      status: 'True',
    });
    expect(nodeConditions({ connected: false, lastSeen: now }, now)[0]).toMatchObject({
      status: 'False',
      reason: 'DeviceDisconnected',
    });
  });
});

describe('podToModules', () => {
  const spec: PodSpec = {
    restartPolicy: 'OnFailure',
    containers: [
      {
        name: 'filter',
        image: 'reg.local/filter:1',
        imagePullPolicy: 'Never',
        command: ['node'],
        args: ['/app/filter.mjs'],
        ports: [{ containerPort: 8080, hostPort: 18080 }],
        resources: { limits: { cpu: '500m', memory: '128Mi' } },
        livenessProbe: { exec: { command: ['true'] }, periodSeconds: 5 },
        volumeMounts: [{ name: 'kube-api-access-abc', mountPath: '/var/run/secrets' }],
      },
    ],
    volumes: [
      { name: 'kube-api-access-abc', projected: {} },
      { name: 'data', emptyDir: {} },
    ],
  };

  it('maps a container to a module with createOptions, limits and restart policy', () => {
    const annotations = {
      'kedge.io/startup-order': '2',
      'kedge.io/desired-properties': '{"threshold":30}',
    };
    const t = podToModules(
      { metadata: { annotations }, spec },
      { env: { filter: { A: '1' } }, registryCredentials: [] },
    );
    expect(t.modules.filter).toEqual({
      version: '1.0',
      type: 'docker',
      status: 'running',
      restartPolicy: 'on-failure',
      imagePullPolicy: 'never',
      startupOrder: 2,
      settings: {
        image: 'reg.local/filter:1',
        createOptions: {
          Entrypoint: ['node'],
          Cmd: ['/app/filter.mjs'],
          ExposedPorts: { '8080/tcp': {} },
          Healthcheck: {
            Test: ['CMD', 'true'],
            Interval: 5e9,
            Timeout: 1e9,
            Retries: 3,
            StartPeriod: 0,
          },
          HostConfig: {
            Memory: 134217728,
            NanoCpus: 5e8,
            PortBindings: { '8080/tcp': [{ HostPort: '18080' }] },
          },
        },
      },
      env: { A: { value: '1' } },
    });
    expect(t.twins).toEqual({ filter: { threshold: 30 } });
    expect(t.unsupported).toEqual(['volume data is not supported (use createOptions binds)']);
  });

  it("maps each pod pull policy to the device's, Always included", () => {
    const policyOf = (imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never') =>
      podToModules(
        { metadata: {}, spec: { containers: [{ name: 'm', image: 'x:1', imagePullPolicy }] } },
        { env: {}, registryCredentials: [] },
      ).modules.m!.imagePullPolicy;
    expect([policyOf('Always'), policyOf('IfNotPresent'), policyOf('Never'), policyOf()]).toEqual([
      'always',
      'on-create',
      'never',
      'on-create',
    ]);
  });

  it('reports what it cannot honour, and lets annotations override per container', () => {
    const annotations = {
      'kedge.io/restart-policy.filter': 'on-unhealthy',
      'kedge.io/create-options': '{"HostConfig":{"Privileged":true}}',
      'kedge.io/desired-properties': 'not json',
    };
    const withProbe: PodSpec = {
      ...spec,
      volumes: [],
      containers: [{ ...spec.containers[0]!, readinessProbe: {}, livenessProbe: { httpGet: {} } }],
    };
    const t = podToModules(
      { metadata: { annotations }, spec: withProbe },
      { env: {}, registryCredentials: [] },
    );
    expect(t.modules.filter!.restartPolicy).toBe('on-unhealthy');
    expect((t.modules.filter!.settings.createOptions as any).HostConfig).toMatchObject({
      Privileged: true,
      Memory: 134217728,
    });
    expect(t.unsupported).toEqual([
      'container filter: livenessProbe supports exec only',
      'container filter: readinessProbe is not supported; Ready follows the module state',
      expect.stringMatching(/^container filter: kedge.io\/desired-properties: invalid JSON/),
    ]);
  });

  it('parses quantities', () => {
    expect(parseQuantity('250m')).toBe(0.25);
    expect(parseQuantity('1Gi')).toBe(1024 ** 3);
    expect(parseQuantity('2')).toBe(2);
    expect(parseQuantity('lots')).toBeUndefined();
  });
});

describe('resolveContainerEnv', () => {
  const lookup: ObjectLookup = {
    configMap: (name) => Promise.resolve(name === 'cfg' ? { mode: 'fast', level: '3' } : undefined),
    secret: (name) => Promise.resolve(name === 'sec' ? { token: 's3cret' } : undefined),
  };
  const fields = { name: 'p', namespace: 'ns', nodeName: 'n.ns.kedge', labels: { app: 'x' } };

  it('resolves literals, refs, fieldRefs, envFrom and $(VAR) expansion', async () => {
    const res = await resolveContainerEnv(
      {
        name: 'c',
        image: 'i',
        envFrom: [{ configMapRef: { name: 'cfg' }, prefix: 'CFG_' }],
        env: [
          { name: 'A', value: 'a' },
          { name: 'B', value: '$(A)-b $$(A)' },
          { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'sec', key: 'token' } } },
          { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'mode' } } },
          { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        ],
      },
      fields,
      lookup,
    );
    expect(res.problems).toEqual([]);
    expect(res.env).toEqual({
      CFG_mode: 'fast',
      CFG_level: '3',
      A: 'a',
      B: 'a-b $(A)',
      TOKEN: 's3cret',
      MODE: 'fast',
      NODE: 'n.ns.kedge',
      APP: 'x',
    });
  });

  it('names what is missing', async () => {
    const res = await resolveContainerEnv(
      {
        name: 'c',
        image: 'i',
        env: [
          { name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } },
          { name: 'Y', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'missing' } } },
          { name: 'Z', valueFrom: { secretKeyRef: { name: 'nope', key: 'k', optional: true } } },
        ],
      },
      fields,
      lookup,
    );
    expect(res.problems).toEqual([
      'env X: Secret nope not found',
      'env Y: key missing not found in ConfigMap cfg',
    ]);
  });

  it('reads dockerconfigjson auths', () => {
    const json = JSON.stringify({
      auths: {
        'localhost:5000': { auth: Buffer.from('u:p:q').toString('base64') },
        'r.io': { username: 'a', password: 'b' },
      },
    });
    expect(registryCredentialsFrom(json)).toEqual([
      { address: 'localhost:5000', username: 'u', password: 'p:q' },
      { address: 'r.io', username: 'a', password: 'b' },
    ]);
  });
});

describe('podStatusFromModules', () => {
  const spec: PodSpec = { containers: [{ name: 'a', image: 'img' }] };
  const status = (report?: Partial<ModuleReport>) =>
    podStatusFromModules({
      spec,
      modules: new Map(
        report ? [['a', { name: 'a', runtimeStatus: 'unknown', restartCount: 0, ...report }]] : [],
      ),
      hostIP: '127.0.0.1',
      now: '2026-01-01T00:00:00Z',
    });

  it('is Running and Ready when the module runs', () => {
    const s = status({
      runtimeStatus: 'running',
      lastStartTimeUtc: '2026-01-01T00:00:00Z',
      restartCount: 2,
    });
    expect(s.phase).toBe('Running');
    expect(s.containerStatuses![0]).toMatchObject({
      ready: true,
      restartCount: 2,
      state: { running: {} },
    });
    expect(s.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
  });

  it('shows CrashLoopBackOff with the last exit', () => {
    const s = status({
      runtimeStatus: 'backoff',
      lastStartTimeUtc: 't0',
      lastExitTimeUtc: 't1',
      exitCode: 3,
    });
    expect(s.phase).toBe('Running');
    expect(s.containerStatuses![0]!.state).toEqual({
      waiting: { reason: 'CrashLoopBackOff', message: undefined },
    });
    expect(s.containerStatuses![0]!.lastState).toEqual({
      terminated: { exitCode: 3, finishedAt: 't1', reason: 'Error' },
    });
  });

  it('shows image pull failures as Pending with the reason', () => {
    const s = status({
      runtimeStatus: 'backoff',
      reason: 'ImagePullBackOff',
      statusDescription: 'pull access denied',
    });
    expect(s.phase).toBe('Pending');
    expect(s.containerStatuses![0]!.state).toEqual({
      waiting: { reason: 'ImagePullBackOff', message: 'pull access denied' },
    });
  });

  it('is Pending with ContainerCreating before any report, and Failed after a final failure', () => {
    expect(status().containerStatuses![0]!.state).toEqual({
      waiting: { reason: 'ContainerCreating' },
    });
    expect(status().phase).toBe('Pending');
    expect(
      status({
        runtimeStatus: 'failed',
        exitCode: 1,
        lastStartTimeUtc: 't0',
        lastExitTimeUtc: 't1',
      }).phase,
    ).toBe('Failed');
    expect(
      status({
        runtimeStatus: 'stopped',
        exitCode: 0,
        lastStartTimeUtc: 't0',
        lastExitTimeUtc: 't1',
      }).phase,
    ).toBe('Succeeded');
  });
});
