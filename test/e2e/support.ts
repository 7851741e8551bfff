import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { bootstrapConfig } from '../../src/cli/device.js';
import { pino } from 'pino';
import { KubeClient } from '../../src/controller/kube/client.js';
import { startController, type RunningController } from '../../src/controller/manager.js';
import { dockerBridgeAddress } from '../../src/localcluster/docker.js';
import { freePort } from '../../src/localcluster/ports.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { chartIdentity } from '../support/chart-identity.js';
import type { TestCluster } from '../support/cluster.js';

export const CONSUMER = { username: 'e2e', password: 'e2e-consumer-password' };

/** Starts kedge controller in this process against the test cluster, as the chart's identity. */
export async function startTestController(
  cluster: TestCluster,
  ports: { hub: number; kubelet: number },
  webhooks: string[] = [],
): Promise<RunningController> {
  await cluster.kubectl(['create', 'namespace', 'kedge-system']);
  // The controller runs as the Helm chart's ServiceAccount: every scenario checks its RBAC too.
  const identity = await chartIdentity(cluster.cp.binDir, (args, input) =>
    cluster.kubectlOk(args, input),
  );
  return startController({
    client: KubeClient.fromConfig(identity),
    log: pino(
      { level: 'debug' },
      pino.destination({
        dest: path.join(PACKAGE_ROOT, '.test-artifacts', 'e2e-controller.log'),
        mkdir: true,
        sync: true,
      }),
    ),
    namespace: 'kedge-system',
    hubPort: ports.hub,
    hubHostNames: ['localhost'],
    kubeletPort: ports.kubelet,
    kubeletAddress: (await dockerBridgeAddress()) ?? '127.0.0.1',
    clientCaPem: cluster.cp.ca.certPem,
    metricsPort: 0,
    leaderElection: false,
    webhooks,
    consumers: [{ ...CONSUMER, namespaces: '*' }],
  });
}

/** A running `kedge node` process. */
export interface NodeProcess {
  child: ChildProcess;
  dataDir: string;
  configPath: string;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Bootstraps a device (`name`, or `namespace/name`) and starts a real `kedge node` process for it. */
export async function startNode(
  cluster: TestCluster,
  deviceRef: string,
  hubPort: number,
  extra: Record<string, unknown> = {},
): Promise<NodeProcess> {
  const [namespace, device] = deviceRef.includes('/')
    ? (deviceRef.split('/') as [string, string])
    : ['default', deviceRef];
  const dataDir = await mkdtemp(path.join(tmpdir(), `kedge-node-${device}-`));
  const client = KubeClient.fromConfig(cluster.cp.kubeconfigPath);
  const config = await bootstrapConfig(client, device, {
    namespace,
    hubUrl: `mqtts://localhost:${hubPort}`,
    controllerNamespace: 'kedge-system',
    dataDir,
    runtime: 'docker',
  });
  const full = {
    ...config,
    metrics: { port: 0 },
    agent: {
      runtime: 'docker',
      network: `kedge-e2e-${device}`,
      containerNamePrefix: `e2e-${device}-`,
      restartBackoffUnitSecs: 1,
      restartBackoffMaxSecs: 4,
    },
    hub: {
      tlsPort: await freePort(),
      workloadPort: await freePort(),
      methodsPort: await freePort(),
    },
    ...extra,
  };
  const configPath = path.join(dataDir, 'node.yaml');
  await writeFile(configPath, stringify(full));
  return launchNode(configPath, dataDir);
}

/** Starts `kedge node --config` (again) for an existing config. */
export function launchNode(configPath: string, dataDir: string): NodeProcess {
  const cli = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
  const child = spawn(process.execPath, [cli, 'node', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  return {
    child,
    dataDir,
    configPath,
    output: () => output,
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}

/** A local HTTP endpoint that records every JSON POST (a telemetry webhook). */
export async function startWebhook(): Promise<{ url: string; bodies: unknown[]; server: Server }> {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(text));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}/telemetry`, bodies, server };
}

export async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8');
}
