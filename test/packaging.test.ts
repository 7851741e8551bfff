import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  ensureBinaries,
  startControlPlane,
  type ControlPlane,
} from '../src/localcluster/control-plane.js';
import { kubectl, PACKAGE_ROOT, type KubectlResult } from '../src/localcluster/kubectl.js';
import { ensureNatsServer } from '../src/localcluster/nats.js';
import { freePort } from '../src/localcluster/ports.js';
import { CHART_DIR, DEPLOY_FILE, renderDeploy } from '../src/localcluster/render-deploy.js';
import { serviceAccountKubeconfig } from './support/chart-identity.js';
import { eventually } from './support/cluster.js';
import { startTestNats } from './support/nats.js';

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
      'replicaCount=3,watchNamespaces={a,b},nats.url=nats://nats:4222,nats.credentialsSecret.name=c',
    ]);
    expect(scoped.code).toBe(0);
  });

  it('renders byte-identical twice, with default and with non-default values', async () => {
    for (const args of [
      [],
      ['--set', `${EXISTING_NATS},nats.userSecret.name=nu,nats.caSecret.name=nca`],
      ['--set', 'controller.embeddedGateway=true,nats.userSecret.name=nu'],
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

  it('runs 2 controllers with leader election and RollingUpdate; 1 without, with Recreate', async () => {
    const two = find((await template()).stdout, 'Deployment', 'kedge');
    const c2 = two.spec.template.spec.containers[0];
    expect(two.spec.replicas).toBe(2);
    // Leader election is kedge controller's default; only turning it off takes a flag.
    expect(c2.args).not.toContain('--no-leader-elect');
    expect(c2.args).toContain('--namespace=kedge-system');
    expect(two.spec.strategy.type).toBe('RollingUpdate');
    expect(c2.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
    expect(c2.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c2.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    const one = find((await template(['--set', 'replicaCount=1'])).stdout, 'Deployment', 'kedge');
    expect(one.spec.template.spec.containers[0].args).toContain('--no-leader-elect');
    expect(one.spec.strategy.type).toBe('Recreate');
    const pdb = find((await template()).stdout, 'PodDisruptionBudget', 'kedge');
    expect(pdb.spec.maxUnavailable).toBe(1);
    const monitor = await template(['--set', 'metrics.serviceMonitor.enabled=true']);
    const selector = find(monitor.stdout, 'ServiceMonitor', 'kedge').spec.selector;
    // It scrapes every Service of the release with a metrics port: the controller's and the gateways'.
    const scraped = docsOf(monitor.stdout).filter(
      (d) =>
        d.kind === 'Service' &&
        Object.entries(selector.matchLabels).every(([k, v]) => d.metadata.labels?.[k] === v) &&
        selector.matchExpressions[0].values.includes(
          d.metadata.labels?.['app.kubernetes.io/component'],
        ) &&
        d.spec.ports.some((p: { name: string }) => p.name === 'metrics'),
    );
    expect(scraped.map((d) => d.metadata.name).sort()).toEqual([
      'kedge-gateway-metrics',
      'kedge-kubelet',
    ]);
    expect(find(monitor.stdout, 'Service', 'kedge-gateway-metrics').spec.selector).toEqual(
      find(monitor.stdout, 'Deployment', 'kedge-gateway').spec.selector.matchLabels,
    );
  });

  it('bundled NATS: a 3-server JetStream StatefulSet that the controller and gateways use with R3', async () => {
    const text = (await template()).stdout;
    const sts = find(text, 'StatefulSet', 'kedge-nats');
    expect(sts.spec.replicas).toBe(3);
    expect(sts.spec.serviceName).toBe('kedge-nats-headless');
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    const nats = sts.spec.template.spec.containers[0];
    expect(nats.image).toBe('nats:2.15.2-alpine');
    expect(nats.command).toEqual(['nats-server', '--config', '/etc/nats/nats.conf']);
    expect(nats.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
    });
    expect(nats.startupProbe.httpGet.path).toBe('/healthz?js-enabled-only=true');
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('10Gi');
    const anti = sts.spec.template.spec.affinity.podAntiAffinity;
    expect(
      anti.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey,
    ).toBe('kubernetes.io/hostname');
    expect(find(text, 'Service', 'kedge-nats-headless').spec).toMatchObject({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
    });
    expect(find(text, 'PodDisruptionBudget', 'kedge-nats').spec.maxUnavailable).toBe(1);
    const conf: string = find(text, 'ConfigMap', 'kedge-nats-config').data['nats.conf'];
    for (let i = 0; i < 3; i++)
      expect(conf).toContain(`nats://kedge-nats-${i}.kedge-nats-headless.kedge-system.svc:6222`);
    expect(conf).toContain('store_dir: /data');
    expect(conf).not.toMatch(/domain/);
    const url = 'nats://kedge-nats.kedge-system.svc:4222';
    expect(envOf(find(text, 'Deployment', 'kedge'))).toMatchObject({
      KEDGE_NATS_URL: url,
      KEDGE_STREAM_REPLICAS: '3',
    });
    expect(envOf(find(text, 'Deployment', 'kedge-gateway')).KEDGE_NATS_URL).toBe(url);
    expect(docsOf(text).map((d) => d.kind)).toContain('NetworkPolicy');
  });

  it('existing NATS: no bundled servers; URL, .creds, user/password and CA reach both processes', async () => {
    const text = (
      await template([
        '--set',
        `${EXISTING_NATS},nats.credentialsSecret.name=nats-creds,nats.userSecret.name=nats-user,nats.caSecret.name=nats-ca`,
      ])
    ).stdout;
    const kinds = docsOf(text).map((d) => d.kind);
    for (const kind of ['StatefulSet', 'ConfigMap', 'NetworkPolicy'])
      expect(kinds).not.toContain(kind);
    for (const name of ['kedge', 'kedge-gateway']) {
      const deployment = find(text, 'Deployment', name);
      expect(envOf(deployment)).toMatchObject({
        KEDGE_NATS_URL: 'nats://a.example:4222,nats://b.example:4222',
        KEDGE_NATS_CREDS_FILE: '/etc/kedge/nats-creds/nats.creds',
        KEDGE_NATS_USER: { secretKeyRef: { name: 'nats-user', key: 'username' } },
        KEDGE_NATS_PASSWORD: { secretKeyRef: { name: 'nats-user', key: 'password' } },
        KEDGE_NATS_CA_FILE: '/etc/kedge/nats-ca/ca.crt',
      });
      const volumes = deployment.spec.template.spec.volumes.map((v: any) => v.secret?.secretName);
      expect(volumes).toEqual(expect.arrayContaining(['nats-creds', 'nats-ca']));
    }
    expect(envOf(find(text, 'Deployment', 'kedge')).KEDGE_STREAM_REPLICAS).toBe('1');
    expect(text).not.toMatch(/password:/i);
  });

  it('gateways: a Deployment with the controller-issued TLS Secret, a PDB and a Service on 8883', async () => {
    const text = (await template()).stdout;
    const gateway = find(text, 'Deployment', 'kedge-gateway');
    expect(gateway.spec.replicas).toBe(2);
    const pod = gateway.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe('kedge-gateway');
    const c = pod.containers[0];
    expect(c.args).toEqual(['gateway']);
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.resources.limits.memory).toBe('512Mi');
    expect(envOf(gateway)).toMatchObject({
      KEDGE_GATEWAY_PORT: '8883',
      KEDGE_GATEWAY_TLS_CERT: '/etc/kedge/tls/tls.crt',
      KEDGE_GATEWAY_TLS_KEY: '/etc/kedge/tls/tls.key',
      KEDGE_GATEWAY_MAX_CONNECTIONS: '10000',
      KEDGE_METRICS_PORT: '8080',
    });
    const tls = pod.volumes.find((v: any) => v.name === 'tls');
    expect(tls.secret).toMatchObject({ secretName: 'kedge-gateway-tls', optional: false });
    expect(find(text, 'ServiceAccount', 'kedge-gateway').automountServiceAccountToken).toBe(false);
    expect(find(text, 'PodDisruptionBudget', 'kedge-gateway').spec.maxUnavailable).toBe(1);
    const service = find(text, 'Service', 'kedge-gateway');
    expect(service.spec.type).toBe('ClusterIP');
    expect(service.spec.ports).toEqual([
      { name: 'mqtts', port: 8883, targetPort: 'mqtts', protocol: 'TCP' },
    ]);
    expect(service.spec.selector['app.kubernetes.io/component']).toBe('gateway');
    const controller = find(text, 'Deployment', 'kedge');
    expect(controller.spec.template.spec.containers[0].ports.map((p: any) => p.name)).toEqual([
      'kubelet',
      'service-api',
      'metrics',
    ]);
    expect(envOf(controller)).toMatchObject({
      KEDGE_EMBEDDED_GATEWAY: 'false',
      KEDGE_GATEWAY_HOSTNAMES:
        'kedge-gateway.kedge-system.svc,kedge-gateway.kedge-system.svc.cluster.local',
    });
    const controllerPorts = find(text, 'Service', 'kedge-kubelet').spec.ports.map(
      (p: any) => p.port,
    );
    expect(controllerPorts).not.toContain(8883);
    const lb = await template([
      '--set',
      'gateway.service.type=LoadBalancer,gateway.hostnames={mqtt.example.com}',
    ]);
    expect(find(lb.stdout, 'Service', 'kedge-gateway').spec.type).toBe('LoadBalancer');
    expect(envOf(find(lb.stdout, 'Deployment', 'kedge')).KEDGE_GATEWAY_HOSTNAMES).toMatch(
      /,mqtt\.example\.com$/,
    );
  });

  it('controller.embeddedGateway: no gateway Deployment; the gateway Service targets the controller', async () => {
    const text = (await template(['--set', 'controller.embeddedGateway=true'])).stdout;
    const names = docsOf(text)
      .filter((d) => d.kind === 'Deployment')
      .map((d) => d.metadata.name);
    expect(names).toEqual(['kedge']);
    const controller = find(text, 'Deployment', 'kedge');
    expect(envOf(controller)).toMatchObject({
      KEDGE_EMBEDDED_GATEWAY: 'true',
      KEDGE_GATEWAY_PORT: '8883',
    });
    expect(controller.spec.template.spec.containers[0].ports[0]).toMatchObject({
      name: 'gateway',
      containerPort: 8883,
    });
    const service = find(text, 'Service', 'kedge-gateway');
    expect(service.spec.selector['app.kubernetes.io/component']).toBe('controller');
    expect(service.spec.ports[0].targetPort).toBe('gateway');
  });

  it('every KEDGE_* variable the chart sets is one kedge reads', async () => {
    const names = new Set<string>();
    for (const args of [
      [],
      ['--set', 'controller.embeddedGateway=true'],
      [
        '--set',
        `${EXISTING_NATS},nats.credentialsSecret.name=c,nats.userSecret.name=u,nats.caSecret.name=ca`,
      ],
    ]) {
      for (const d of docsOf((await template(args)).stdout).filter((o) => o.kind === 'Deployment'))
        for (const name of Object.keys(envOf(d))) if (name.startsWith('KEDGE_')) names.add(name);
    }
    expect(names.size).toBeGreaterThanOrEqual(14);
    const sources = await sourceText(path.join(PACKAGE_ROOT, 'src'));
    const unread = [...names].filter((name) => !sources.includes(name));
    expect(unread).toEqual([]);
    expect([...names].some((n) => n.includes('REDIS'))).toBe(false);
  });

  it('the bundled NATS config forms a 3-server JetStream cluster that requires the user Secret', async () => {
    const text = (await template(['--set', 'nats.userSecret.name=nats-user'])).stdout;
    const conf: string = find(text, 'ConfigMap', 'kedge-nats-config').data['nats.conf'];
    const dir = await mkdtemp(path.join(tmpdir(), 'kedge-chart-nats-'));
    const nodes = [];
    for (let i = 0; i < 3; i++)
      nodes.push({ client: await freePort(), http: await freePort(), route: await freePort() });
    const binary = await ensureNatsServer();
    const servers: ChildProcess[] = [];
    try {
      for (const [i, node] of nodes.entries()) {
        // Loopback ports and a local store per server; everything else is the chart's text.
        let local = conf
          .replace('0.0.0.0:4222', `127.0.0.1:${node.client}`)
          .replace('0.0.0.0:8222', `127.0.0.1:${node.http}`)
          .replace('0.0.0.0:6222', `127.0.0.1:${node.route}`)
          .replace('store_dir: /data', `store_dir: ${JSON.stringify(path.join(dir, `s${i}`))}`);
        for (const [j, peer] of nodes.entries())
          local = local.replace(
            `kedge-nats-${j}.kedge-nats-headless.kedge-system.svc:6222`,
            `127.0.0.1:${peer.route}`,
          );
        expect(local).not.toContain('svc');
        const file = path.join(dir, `nats-${i}.conf`);
        await writeFile(file, local);
        const env = { SERVER_NAME: `kedge-nats-${i}`, NATS_USER: 'kedge', NATS_PASSWORD: 'pw1' };
        const log = openSync(path.join(dir, `nats-${i}.log`), 'w');
        servers.push(spawn(binary, ['-c', file], { env, stdio: ['ignore', log, log] }));
      }
      for (const node of nodes)
        await eventually('each server to be healthy with a JetStream meta leader', async () => {
          const res = await fetch(`http://127.0.0.1:${node.http}/healthz`).catch(() => undefined);
          await res?.body?.cancel();
          return res?.ok ? true : undefined;
        });
      const varz = (await (await fetch(`http://127.0.0.1:${nodes[0]!.http}/varz`)).json()) as any;
      expect(varz.server_name).toBe('kedge-nats-0');
      expect(varz.auth_required).toBe(true);
      expect(varz.cluster.name).toBe('kedge-nats');
      expect(varz.jetstream.config.max_storage).toBe(9 * 1024 ** 3);
      const urls = nodes.map((n) => `nats://127.0.0.1:${n.client}`);
      const nc = await connect({ servers: urls, user: 'kedge', pass: 'pw1' });
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name: 'CHART', subjects: ['chart.>'], num_replicas: 3 });
        const ack = await jetstream(nc).publish('chart.x', 'hello');
        expect(ack.seq).toBe(1);
        const info = await jsm.streams.info('CHART');
        expect(info.cluster?.replicas).toHaveLength(2);
      } finally {
        await nc.close();
      }
      await expect(connect({ servers: urls[0], reconnect: false })).rejects.toThrow();
    } finally {
      for (const server of servers) server.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
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
    expect(redis.stderr).toMatch(/additional properties 'redis' not allowed/);
    const neither = await template(['--set', 'nats.bundled.enabled=false']);
    expect(neither.code).not.toBe(0);
    expect(neither.stderr).toMatch(/'\/nats\/url': minLength/);
    const both = await template(['--set', `${EXISTING_NATS},nats.bundled.enabled=true`]);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/'\/nats\/url': maxLength/);
    expect((await template(['--set', 'nats.url=nats://a:4222'])).code).toBe(0);
  });

  it('helm install creates every object, and the CRDs are Established', async () => {
    // The service API group is cluster-wide: deploy/ (applied below) serves it in this cluster.
    const res = await helm([
      'install',
      'edge',
      CHART_DIR,
      '-n',
      'kedge-helm',
      '--create-namespace',
      '--set',
      'serviceApi.enabled=false',
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
      'ConfigMap',
      'Deployment',
      'Deployment',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'PodDisruptionBudget',
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
      'Service',
      'Service',
      'Service',
      'ServiceAccount',
      'ServiceAccount',
      'StatefulSet',
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
        ![
          'Deployment',
          'StatefulSet',
          'PodDisruptionBudget',
          'Namespace',
          'CustomResourceDefinition',
          'APIService',
        ].includes(a.kind)
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
      ['patch', 'pods', '-n', 'fleet'],
      ['patch', 'pods', '--subresource=status', '-n', 'fleet'],
      ['create', 'nodes'],
      ['delete', 'nodes'],
      ['patch', 'nodes', '--subresource=status'],
      ['create', 'leases.coordination.k8s.io', '-n', 'kube-node-lease'],
      ['patch', 'leases.coordination.k8s.io', '-n', 'kube-node-lease'],
      ['update', 'leases.coordination.k8s.io', '-n', 'kedge-system'],
      ['get', 'secrets', '-n', 'fleet'],
      // The device key Secrets are watched (by label), so a rotated key takes effect at once.
      ['watch', 'secrets', '-n', 'fleet'],
      ['create', 'secrets', '-n', 'kedge-system'],
      ['update', 'secrets/kedge-gateway-tls', '-n', 'kedge-system'],
      ['create', 'configmaps', '-n', 'kedge-system'],
      ['patch', 'configmaps/kedge-ca', '-n', 'kedge-system'],
      ['list', 'namespaces'],
      ['get', 'configmaps/extension-apiserver-authentication', '-n', 'kube-system'],
      ['create', 'events', '-n', 'fleet'],
      ['patch', 'events', '-n', 'fleet'],
      ['create', 'tokenreviews.authentication.k8s.io'],
      ['create', 'subjectaccessreviews.authorization.k8s.io'],
      ['patch', 'apiservices.apiregistration.k8s.io/v1alpha1.api.kedge.io'],
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
      ['update', 'secrets', '-n', 'fleet'],
      ['patch', 'secrets', '-n', 'fleet'],
      ['update', 'secrets/kedge-ca', '-n', 'kedge-system'],
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
      ['create', 'apiservices.apiregistration.k8s.io'],
      ['patch', 'apiservices.apiregistration.k8s.io/v1beta1.metrics.k8s.io'],
    ];
    for (const args of denied)
      expect({ args, can: await canI(k, args) }).toEqual({ args, can: false });
  });

  it('RBAC: the gateway ServiceAccount has no Kubernetes permissions', async () => {
    const gateway = 'system:serviceaccount:kedge-system:kedge-gateway';
    for (const args of [
      ['get', 'secrets', '-n', 'kedge-system'],
      ['get', 'secrets/kedge-gateway-tls', '-n', 'kedge-system'],
      ['list', 'pods', '-n', 'kedge-system'],
      ['list', 'edgedevices.kedge.io', '-A'],
      ['get', 'leases.coordination.k8s.io', '-n', 'kedge-system'],
    ])
      expect({ args, can: await canI(k, args, gateway) }).toEqual({ args, can: false });
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
      '--set',
      'serviceApi.enabled=false',
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
    const nats = await startTestNats('packaging-rbac');
    const controller = await startControllerProcess(kubeconfig, log, nats.url);
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
      await kOk(['get', 'secret', 'kedge-gateway-tls', '-n', 'kedge-system']);
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
      await new Promise((r) => controller.once('exit', r));
      await nats.stop();
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

/** An existing NATS cluster of two servers, instead of the bundled one. */
const EXISTING_NATS = 'nats.url=nats://a.example:4222\\,nats://b.example:4222';

/** The rendered object of this kind and name. */
function find(text: string, kind: string, name: string): any {
  const found = docsOf(text).find((d) => d.kind === kind && d.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the render`);
  return found;
}

/** The first container's env as name → value (or valueFrom). */
function envOf(deployment: any): Record<string, unknown> {
  const env: { name: string; value?: string; valueFrom?: unknown }[] =
    deployment.spec.template.spec.containers[0].env ?? [];
  return Object.fromEntries(env.map((e) => [e.name, e.value ?? e.valueFrom]));
}

/** Every TypeScript source under `dir`, concatenated. */
async function sourceText(dir: string): Promise<string> {
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.ts'));
  const texts = await Promise.all(files.map((f) => readFile(path.join(dir, f), 'utf8')));
  return texts.join('\n');
}

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
async function startControllerProcess(
  kubeconfig: string,
  log: string,
  natsUrl: string,
): Promise<ChildProcess> {
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
      '--nats-url',
      natsUrl,
      '--kubelet-port',
      '0',
      '--metrics-port',
      '0',
      '--kubelet-address',
      '127.0.0.1',
      '--service-api-port',
      '0',
    ],
    { stdio: ['ignore', fd, fd], env: { ...process.env, KEDGE_LOG_LEVEL: 'debug' } },
  );
  return child;
}
