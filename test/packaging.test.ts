import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  ensureBinaries,
  startControlPlane,
  type ControlPlane,
} from '../src/localcluster/control-plane.js';
import { kubectl, PACKAGE_ROOT, type KubectlResult } from '../src/localcluster/kubectl.js';
import { CHART_DIR, DEPLOY_FILE, renderDeploy } from '../src/localcluster/render-deploy.js';
import { serviceAccountKubeconfig } from './support/chart-identity.js';
import { eventually } from './support/cluster.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
const SA = 'system:serviceaccount:kedge-system:kedge';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface Obj {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    managedFields?: { manager: string; operation: string; time?: string; fieldsV1?: unknown }[];
  };
  status?: any;
}

describe('packaging: Helm chart and deploy/ on a real API server', () => {
  let cp: ControlPlane;
  let helmBin: string;
  let k: (args: string[], input?: string) => Promise<KubectlResult>;
  let kOk: (args: string[], input?: string) => Promise<string>;
  const helm = (args: string[]): Promise<Run> =>
    exec(helmBin, [...args, '--kubeconfig', cp.kubeconfigPath]);
  const template = (args: string[] = []): Promise<Run> =>
    exec(helmBin, ['template', 'kedge', CHART_DIR, '--namespace', 'kedge-system', ...args]);

  beforeAll(async () => {
    const binDir = await ensureBinaries();
    helmBin = path.join(binDir, 'helm');
    // No installCrds here: the chart must install them itself.
    cp = await startControlPlane({
      binDir,
      logDir: path.join(PACKAGE_ROOT, '.test-artifacts', `packaging-${Date.now()}`),
    });
    k = (args, input) => kubectl(cp.binDir, cp.kubeconfigPath, args, input);
    kOk = async (args, input) => {
      const res = await k(args, input);
      if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
      return res.stdout;
    };
  });
  afterAll(async () => cp?.stop());

  it('helm lint --strict is clean', async () => {
    const res = await exec(helmBin, ['lint', '--strict', CHART_DIR]);
    expect(res.stderr + res.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(res.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(res.code).toBe(0);
    const scoped = await exec(helmBin, [
      'lint',
      '--strict',
      CHART_DIR,
      '--set',
      'replicaCount=3,watchNamespaces={a,b},redis.enabled=true,redis.host=redis',
    ]);
    expect(scoped.code).toBe(0);
  });

  it('renders byte-identical twice, with default and with non-default values', async () => {
    for (const args of [
      [],
      ['--set', 'replicaCount=2,redis.enabled=true,redis.host=r,redis.passwordSecret.name=rp'],
      ['--set', 'watchNamespaces={team-a,team-b},metrics.serviceMonitor.enabled=true'],
    ]) {
      const a = await template(args);
      const b = await template(args);
      expect(a.code).toBe(0);
      expect(a.stdout).toBe(b.stdout);
      expect(a.stdout.length).toBeGreaterThan(1000);
    }
  });

  it('deploy/kedge.yaml is the chart render (fails on drift: run npm run render)', async () => {
    const rendered = await renderDeploy(helmBin);
    const onDisk = await readFile(DEPLOY_FILE, 'utf8');
    expect(onDisk === rendered).toBe(true);
  });

  it('turns replicas > 1 into leader election, RollingUpdate and KEDGE_REDIS_URL', async () => {
    const one = docsOf((await template()).stdout).find((d) => d.kind === 'Deployment');
    const c1 = one.spec.template.spec.containers[0];
    expect(c1.args).toContain('--no-leader-elect');
    expect(c1.args).toContain('--namespace=kedge-system');
    expect(one.spec.strategy.type).toBe('Recreate');
    const res = await template([
      '--set',
      'replicaCount=2,redis.enabled=true,redis.host=redis.db,redis.passwordSecret.name=redis-pw',
    ]);
    const two = docsOf(res.stdout).find((d) => d.kind === 'Deployment');
    const c2 = two.spec.template.spec.containers[0];
    expect(c2.args).not.toContain('--no-leader-elect');
    expect(two.spec.strategy.type).toBe('RollingUpdate');
    const env = Object.fromEntries(c2.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env.KEDGE_REDIS_URL).toBe('redis://:$(KEDGE_REDIS_PASSWORD)@redis.db:6379/0');
    expect(env.KEDGE_REDIS_PASSWORD).toEqual({
      secretKeyRef: { name: 'redis-pw', key: 'password' },
    });
    expect(res.stdout).not.toMatch(/password:/i);
    expect(c2.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
    expect(c2.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c2.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    const pdb = docsOf(res.stdout).find((d) => d.kind === 'PodDisruptionBudget');
    expect(pdb.spec.maxUnavailable).toBe(1);
    const monitor = await template(['--set', 'metrics.serviceMonitor.enabled=true']);
    expect(docsOf(monitor.stdout).map((d) => d.kind)).toContain('ServiceMonitor');
  });

  it('fails helm template and helm install on a bad value with the schema message', async () => {
    const bad = await template(['--set', 'replicaCount=two']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(bad.stderr).toMatch(/replicaCount/);
    expect(bad.stderr).toMatch(/got string, want integer/);
    const install = await helm([
      'install',
      'bad',
      CHART_DIR,
      '-n',
      'bad',
      '--create-namespace',
      '--set',
      'replicaCount=two',
    ]);
    expect(install.code).not.toBe(0);
    expect(install.stderr).toMatch(/replicaCount.*got string, want integer/s);
    const typo = await template(['--set', 'replicas=2']);
    expect(typo.stderr).toMatch(/additional properties 'replicas' not allowed/);
    const rw = await template(['--set', 'securityContext.readOnlyRootFilesystem=false']);
    expect(rw.code).not.toBe(0);
    expect(rw.stderr).toMatch(/readOnlyRootFilesystem/);
    const redis = await template(['--set', 'redis.enabled=true']);
    expect(redis.code).not.toBe(0);
  });

  it('helm install creates every object, and the CRDs are Established', async () => {
    const res = await helm([
      'install',
      'edge',
      CHART_DIR,
      '-n',
      'kedge-helm',
      '--create-namespace',
    ]);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    for (const crd of ['edgedevices', 'edgedeployments', 'routes']) {
      await kOk(['wait', '--for=condition=Established', '--timeout=60s', `crd/${crd}.kedge.io`]);
    }
    const manifest = await helm(['get', 'manifest', 'edge', '-n', 'kedge-helm']);
    const objects = docsOf(manifest.stdout) as Obj[];
    expect(objects.map((o) => o.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'Deployment',
      'PodDisruptionBudget',
      'Role',
      'Role',
      'Role',
      'Role',
      'RoleBinding',
      'RoleBinding',
      'RoleBinding',
      'RoleBinding',
      'Service',
      'Service',
      'ServiceAccount',
    ]);
    for (const o of objects) {
      const ns = o.metadata.namespace ? ['-n', o.metadata.namespace] : [];
      await kOk(['get', o.kind, o.metadata.name, ...ns, '-o', 'name']);
    }
    const kinds = await kOk(['api-resources', '--categories=kedge', '-o', 'name']);
    expect(kinds.trim().split('\n').sort()).toEqual([
      'edgedeployments.kedge.io',
      'edgedevices.kedge.io',
      'routes.kedge.io',
    ]);
  });

  it('server-side apply of deploy/ twice: the second changes nothing, and diff is empty', async () => {
    const deployDir = path.join(PACKAGE_ROOT, 'deploy');
    await kOk(['apply', '--server-side', '-f', deployDir]);
    const before = await liveObjects(kOk);
    await new Promise((r) => setTimeout(r, 1100)); // managedFields times have 1 s resolution
    const second = await kOk(['apply', '--server-side', '-f', deployDir]);
    expect(second.trim().split('\n')).toHaveLength(before.length);
    const after = await liveObjects(kOk);
    expect(after.map(identity)).toEqual(before.map(identity));
    for (const [i, b] of before.entries()) {
      const a = after[i]!;
      expect({ id: identity(a), apply: applyEntry(a) }).toEqual({
        id: identity(b),
        apply: applyEntry(b),
      });
      expect(a.metadata.generation).toBe(b.metadata.generation);
      // Objects no controller writes status to must not have changed at all.
      if (
        !['Deployment', 'PodDisruptionBudget', 'Namespace', 'CustomResourceDefinition'].includes(
          a.kind,
        )
      ) {
        expect({ id: identity(a), rv: a.metadata.resourceVersion }).toEqual({
          id: identity(b),
          rv: b.metadata.resourceVersion,
        });
      }
    }
    const diff = await k(['diff', '--server-side', '-f', deployDir]);
    expect({ code: diff.code, out: diff.stdout }).toEqual({ code: 0, out: '' });
  });

  it('RBAC: the ServiceAccount can do what the controller does', async () => {
    const allowed: string[][] = [
      ['list', 'edgedevices.kedge.io', '-A'],
      ['watch', 'edgedeployments.kedge.io', '-A'],
      ['patch', 'edgedevices.kedge.io', '-n', 'fleet'],
      ['patch', 'edgedevices.kedge.io', '--subresource=status', '-n', 'fleet'],
      ['patch', 'routes.kedge.io', '--subresource=status', '-n', 'fleet'],
      ['update', 'edgedeployments.kedge.io', '--subresource=finalizers', '-n', 'fleet'],
      ['create', 'pods', '-n', 'fleet'],
      ['delete', 'pods', '-n', 'fleet'],
      ['patch', 'pods', '--subresource=status', '-n', 'fleet'],
      ['create', 'nodes'],
      ['delete', 'nodes'],
      ['patch', 'nodes', '--subresource=status'],
      ['create', 'leases.coordination.k8s.io', '-n', 'kube-node-lease'],
      ['patch', 'leases.coordination.k8s.io', '-n', 'kube-node-lease'],
      ['update', 'leases.coordination.k8s.io', '-n', 'kedge-system'],
      ['get', 'secrets', '-n', 'fleet'],
      ['create', 'secrets', '-n', 'kedge-system'],
      ['create', 'configmaps', '-n', 'kedge-system'],
      ['patch', 'configmaps/kedge-ca', '-n', 'kedge-system'],
      ['list', 'namespaces'],
      ['get', 'configmaps/extension-apiserver-authentication', '-n', 'kube-system'],
      ['create', 'events', '-n', 'fleet'],
      ['create', 'tokenreviews.authentication.k8s.io'],
      ['create', 'subjectaccessreviews.authorization.k8s.io'],
    ];
    for (const args of allowed)
      expect({ args, can: await canI(k, args) }).toEqual({ args, can: true });
  });

  it('RBAC: the ServiceAccount cannot do what the controller does not need', async () => {
    const denied: string[][] = [
      ['delete', 'namespaces'],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
      ['create', 'roles.rbac.authorization.k8s.io', '-n', 'fleet'],
      ['escalate', 'clusterroles.rbac.authorization.k8s.io'],
      ['list', 'secrets', '-A'],
      ['watch', 'secrets', '-n', 'fleet'],
      ['update', 'secrets', '-n', 'fleet'],
      ['update', 'configmaps', '-n', 'kube-system'],
      ['create', 'configmaps', '-n', 'fleet'],
      ['list', 'configmaps', '-n', 'kube-system'],
      ['create', 'edgedevices.kedge.io', '-n', 'fleet'],
      ['update', 'edgedeployments.kedge.io', '-n', 'fleet'],
      ['delete', 'routes.kedge.io', '-n', 'fleet'],
      ['update', 'pods', '-n', 'fleet'],
      ['create', 'pods', '--subresource=exec', '-n', 'fleet'],
      ['create', 'deployments.apps', '-n', 'kedge-system'],
      ['create', 'customresourcedefinitions.apiextensions.k8s.io'],
      ['delete', 'leases.coordination.k8s.io', '-n', 'kube-system'],
      ['impersonate', 'serviceaccounts'],
      ['update', 'nodes', '--subresource=status'],
      ['create', 'serviceaccounts', '--subresource=token', '-n', 'kedge-system'],
    ];
    for (const args of denied)
      expect({ args, can: await canI(k, args) }).toEqual({ args, can: false });
  });

  it('RBAC scoped by watchNamespaces: only the listed namespaces are reachable', async () => {
    for (const ns of ['team-a', 'team-b']) await kOk(['create', 'namespace', ns]);
    const res = await helm([
      'install',
      'kedge-scoped',
      CHART_DIR,
      '-n',
      'kedge-scoped',
      '--create-namespace',
      '--set',
      'watchNamespaces={team-a}',
    ]);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    const as = 'system:serviceaccount:kedge-scoped:kedge-scoped';
    const can = (args: string[]): Promise<boolean> => canI(k, args, as);
    expect(await can(['get', 'secrets', '-n', 'team-a'])).toBe(true);
    expect(await can(['create', 'pods', '-n', 'team-a'])).toBe(true);
    expect(await can(['watch', 'edgedevices.kedge.io', '-n', 'team-a'])).toBe(true);
    expect(await can(['get', 'secrets', '-n', 'team-b'])).toBe(false);
    expect(await can(['get', 'secrets', '-n', 'default'])).toBe(false);
    expect(await can(['list', 'pods', '-n', 'team-b'])).toBe(false);
    expect(await can(['list', 'edgedevices.kedge.io', '-A'])).toBe(false);
    expect(await can(['create', 'nodes'])).toBe(true);
    expect(await can(['update', 'leases.coordination.k8s.io', '-n', 'kedge-scoped'])).toBe(true);
    expect(await can(['create', 'secrets', '-n', 'kedge-scoped'])).toBe(true);
    // Cluster-wide, only what a virtual kubelet needs: Nodes, namespace labels, reviews.
    expect(await can(['watch', 'namespaces'])).toBe(true);
    expect(await can(['update', 'namespaces'])).toBe(false);
    expect(await can(['get', 'configmaps', '-n', 'team-b'])).toBe(false);
    // Enrolment reads the CA certificate; nobody but the controller reads the CA Secret.
    const user = 'someone@example.com';
    expect(await canI(k, ['get', 'configmaps/kedge-ca', '-n', 'kedge-scoped'], user)).toBe(true);
    expect(await canI(k, ['get', 'secrets/kedge-ca', '-n', 'kedge-scoped'], user)).toBe(false);
    const deployment = JSON.parse(
      await kOk(['get', 'deployment', 'kedge-scoped', '-n', 'kedge-scoped', '-o', 'json']),
    );
    expect(deployment.spec.template.spec.containers[0].args).toContain('--watch-namespace=team-a');
  });

  it('RBAC is sufficient: kedge controller runs under the ServiceAccount token with no 403', async () => {
    const kubeconfig = await serviceAccountKubeconfig(kOk);
    await kOk(['create', 'namespace', 'fleet']);
    const log = path.join(
      PACKAGE_ROOT,
      '.test-artifacts',
      `packaging-controller-${Date.now()}.log`,
    );
    const controller = await startControllerProcess(kubeconfig, log);
    try {
      await kOk(['apply', '-n', 'fleet', '-f', '-'], SAMPLE);
      const device = await eventually('EdgeDevice status and finalizer', async () => {
        const d = JSON.parse(
          await kOk(['get', 'edgedevice', 'rbac-dev', '-n', 'fleet', '-o', 'json']),
        );
        return d.status?.phase && d.metadata.finalizers?.length ? d : undefined;
      });
      expect(device.status.phase).toBe('Pending');
      await kOk(['get', 'secret', 'rbac-dev-kedge-key', '-n', 'fleet']);
      await kOk(['get', 'secret', 'kedge-ca', '-n', 'kedge-system']);
      await kOk(['get', 'configmap', 'kedge-ca', '-n', 'kedge-system']);
      await kOk(['get', 'lease', 'kedge-controller', '-n', 'kedge-system']);
      await kOk(['get', 'node', 'rbac-dev.fleet.kedge']);
      await eventually('EdgeDeployment status and module pod', async () => {
        const d = JSON.parse(
          await kOk(['get', 'edgedeployment', 'rbac-app', '-n', 'fleet', '-o', 'json']),
        );
        const pods = await kOk(['get', 'pods', '-n', 'fleet', '-o', 'name']);
        return d.status?.targetedCount === 1 && pods.includes('pod/') ? true : undefined;
      });
      await eventually('Route Valid condition', async () => {
        const r = JSON.parse(
          await kOk(['get', 'route', 'rbac-route', '-n', 'fleet', '-o', 'json']),
        );
        return r.status?.conditions?.some((c: any) => c.type === 'Valid') ? true : undefined;
      });
      await kOk([
        'delete',
        'edgedevice',
        'rbac-dev',
        '-n',
        'fleet',
        '--wait=true',
        '--timeout=60s',
      ]);
      expect((await k(['get', 'node', 'rbac-dev.fleet.kedge'])).code).not.toBe(0);
      expect((await k(['get', 'secret', 'rbac-dev-kedge-key', '-n', 'fleet'])).code).not.toBe(0);
    } finally {
      controller.kill('SIGTERM');
    }
    const text = await readFile(log, 'utf8');
    expect(text).toMatch(/kedge controller running/);
    expect(text).not.toMatch(/forbidden|\b403\b/i);
  });
});

const SAMPLE = `apiVersion: kedge.io/v1alpha1
kind: EdgeDevice
metadata:
  name: rbac-dev
  labels:
    site: rbac
spec: {}
---
apiVersion: kedge.io/v1alpha1
kind: EdgeDeployment
metadata:
  name: rbac-app
spec:
  selector:
    matchLabels:
      site: rbac
  modules:
    - name: sensor
      image: kedge-local/busybox:1
      env:
        - name: FROM_SECRET
          valueFrom:
            secretKeyRef: {name: app-settings, key: token}
        - name: FROM_CONFIGMAP
          valueFrom:
            configMapKeyRef: {name: app-config, key: level}
---
apiVersion: kedge.io/v1alpha1
kind: Route
metadata:
  name: rbac-route
spec:
  deviceSelector:
    matchLabels:
      site: rbac
  route: FROM /messages/* INTO $upstream
---
apiVersion: v1
kind: Secret
metadata:
  name: app-settings
stringData:
  token: t0ken
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  level: debug
`;

function docsOf(text: string): any[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((d) => d !== null && d !== undefined);
}

function identity(o: Obj): string {
  return `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function applyEntry(o: Obj): unknown {
  return (o.metadata.managedFields ?? []).filter((m) => m.operation === 'Apply');
}

async function liveObjects(kOk: (args: string[]) => Promise<string>): Promise<Obj[]> {
  const list = JSON.parse(
    await kOk(['get', '-f', DEPLOY_FILE, '-o', 'json', '--show-managed-fields']),
  );
  return (list.items as Obj[]).map((o) => o);
}

async function canI(
  k: (args: string[]) => Promise<KubectlResult>,
  args: string[],
  as = SA,
): Promise<boolean> {
  const res = await k(['auth', 'can-i', ...args, `--as=${as}`]);
  if (res.code !== 0 && !/^no/.test(res.stdout.trim()))
    throw new Error(`can-i failed: ${res.stderr}`);
  return res.stdout.trim() === 'yes';
}

/** A kubeconfig that authenticates as the chart's ServiceAccount, with a bound token. */
async function startControllerProcess(kubeconfig: string, log: string): Promise<ChildProcess> {
  const { openSync } = await import('node:fs');
  const fd = openSync(log, 'w');
  const child = spawn(
    process.execPath,
    [
      CLI,
      'controller',
      '--kubeconfig',
      kubeconfig,
      '--namespace',
      'kedge-system',
      '--hub-port',
      '0',
      '--kubelet-port',
      '0',
      '--metrics-port',
      '0',
      '--kubelet-address',
      '127.0.0.1',
    ],
    { stdio: ['ignore', fd, fd], env: { ...process.env, KEDGE_LOG_LEVEL: 'debug' } },
  );
  return child;
}
