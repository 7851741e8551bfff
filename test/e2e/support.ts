import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { bootstrapConfig } from '../../src/cli/device.js';
import type { UpstreamMessage } from '../../src/common/cloudlink/protocol.js';
import { Streams, Subjects } from '../../src/common/cloudplane/layout.js';
import { pino } from 'pino';
import { KubeClient } from '../../src/controller/kube/client.js';
import {
  startController,
  type ControllerOptions,
  type RunningController,
} from '../../src/controller/manager.js';
import { dockerBridgeAddress } from '../../src/localcluster/docker.js';
import { freePort } from '../../src/localcluster/ports.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import {
  installExternalServiceApi,
  waitServiceApiAvailable,
} from '../../src/localcluster/service-api.js';
import { chartIdentity } from '../support/chart-identity.js';
import type { TestCluster } from '../support/cluster.js';

/**
 * Starts kedge controller in this process against the test cluster, as the chart's identity,
 * with an embedded gateway on `ports.hub`, the cloud plane on the NATS at `natsUrl`, and the
 * chart's service API objects pointing at it; returns once the API server reaches it.
 */
export async function startTestController(
  cluster: TestCluster,
  ports: { hub: number; kubelet: number },
  natsUrl: string,
  extra: Partial<ControllerOptions> = {},
): Promise<RunningController> {
  await cluster.kubectl(['create', 'namespace', 'kedge-system']);
  // The controller runs as the Helm chart's ServiceAccount: every scenario checks its RBAC too.
  const identity = await chartIdentity(
    cluster.cp.binDir,
    (args, input) => cluster.kubectlOk(args, input),
    extra.metricsApi ? ['metricsApi.enabled=true'] : [],
  );
  const address = (await dockerBridgeAddress()) ?? '127.0.0.1';
  const serviceApiPort = extra.serviceApiPort ?? (await freePort());
  const tools = { helm: path.join(cluster.cp.binDir, 'helm'), kubectlDir: cluster.cp.binDir };
  await installExternalServiceApi(tools, cluster.cp.kubeconfigPath, {
    address,
    port: serviceApiPort,
    namespace: 'kedge-system',
    ...(extra.metricsApi ? { metricsApi: true } : {}),
  });
  const controller = await startController({
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
    nats: { servers: [natsUrl] },
    embeddedGateway: { port: ports.hub },
    gatewayHostNames: ['localhost'],
    kubeletPort: ports.kubelet,
    kubeletAddress: address,
    clientCaPem: cluster.cp.ca.certPem,
    metricsPort: 0,
    leaderElection: false,
    ...extra,
    serviceApiPort,
  });
  await waitServiceApiAvailable(cluster.cp.binDir, cluster.cp.kubeconfigPath);
  return controller;
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
  options: {
    namespace?: string;
    config?: Record<string, unknown>;
    /** An X.509 device's certificate and key files. */
    x509?: { certFile: string; keyFile: string };
    /** Settings merged into the bootstrapped `cloud` section. */
    cloud?: Record<string, unknown>;
  } = {},
): Promise<NodeProcess> {
  // `namespace/device`, or a device of `options.namespace` (default `default`).
  const [refNamespace, device] = deviceRef.includes('/')
    ? (deviceRef.split('/') as [string, string])
    : [undefined, deviceRef];
  const { namespace = refNamespace ?? 'default', config: extra = {} } = options;
  const dataDir = await mkdtemp(path.join(tmpdir(), `kedge-node-${device}-`));
  const client = KubeClient.fromConfig(cluster.cp.kubeconfigPath);
  const config = await bootstrapConfig(client, device, {
    namespace,
    hubUrl: `mqtts://localhost:${hubPort}`,
    controllerNamespace: 'kedge-system',
    dataDir,
    runtime: 'docker',
    ...options.x509,
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
    ...(options.cloud ? { cloud: { ...(config.cloud as object), ...options.cloud } } : {}),
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

/**
 * A local HTTP endpoint that records every JSON POST (a telemetry webhook) whose HMAC signature
 * verifies, and counts the ones that do not. `down` makes it answer 503.
 */
export async function startWebhook(hmacKey = 'e2e-webhook-key'): Promise<TestWebhook> {
  const hook: TestWebhook = {
    url: '',
    hmacKey,
    bodies: [],
    badSignatures: 0,
    down: false,
  } as unknown as TestWebhook;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      if (hook.down) {
        res.statusCode = 503;
        return void res.end('down');
      }
      const expected = `sha256=${createHmac('sha256', hmacKey).update(text).digest('hex')}`;
      if (req.headers['x-kedge-signature'] !== expected) {
        hook.badSignatures++;
        res.statusCode = 401;
        return void res.end('bad signature');
      }
      hook.bodies.push(JSON.parse(text));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address() as { port: number };
  hook.url = `http://127.0.0.1:${address.port}/telemetry`;
  hook.server = server;
  return hook;
}

/** What {@link startWebhook} returns. */
export interface TestWebhook {
  url: string;
  hmacKey: string;
  bodies: unknown[];
  badSignatures: number;
  down: boolean;
  server: Server;
}

/** Configures the namespace's telemetry webhook as a user would: its Secret. */
export async function configureWebhook(
  cluster: TestCluster,
  namespace: string,
  hook: { url: string; hmacKey: string },
): Promise<void> {
  await cluster.kubectlOk(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'kedge-telemetry-webhook', namespace },
      stringData: { url: hook.url, hmacKey: hook.hmacKey },
    }),
  );
}

/** One telemetry message as a durable consumer reads it from JetStream. */
export interface ConsumedTelemetry {
  subject: string;
  message: UpstreamMessage;
}

/**
 * Reads telemetry of `namespace` as an application would: a JetStream durable consumer on the
 * telemetry stream. Survives controller and gateway restarts; `stop()` deletes it.
 */
export async function startTelemetryConsumer(
  natsUrl: string,
  namespace: string,
  onMessage: (m: ConsumedTelemetry) => void,
): Promise<{ stop(): Promise<void> }> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const name = `e2e-${namespace}-${Date.now()}`;
  await jsm.consumers.add(Streams.telemetry, {
    durable_name: name,
    filter_subject: Subjects.telemetryOf(namespace),
    ack_policy: AckPolicy.Explicit,
  });
  const consumer = await jetstream(nc).consumers.get(Streams.telemetry, name);
  const messages = await consumer.consume();
  void (async () => {
    for await (const m of messages) {
      onMessage({ subject: m.subject, message: m.json<UpstreamMessage>() });
      m.ack();
    }
  })();
  return {
    stop: async () => {
      await messages.close();
      await jsm.consumers.delete(Streams.telemetry, name).catch(() => undefined);
      await nc.close();
    },
  };
}

export async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8');
}

/** What a finished CLI run printed. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `kedge` CLI; with `kubeconfig`, against that cluster. */
export function runKedge(args: string[], kubeconfig?: string): Promise<CliRun> {
  const cli = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
  const target = kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args, ...target]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** An EdgeDevice in `default` as JSON, for `kubectl apply -f -`. */
export function edgeDeviceJson(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'kedge.io/v1alpha1',
    kind: 'EdgeDevice',
    metadata: { name, namespace: 'default' },
    spec,
  });
}
