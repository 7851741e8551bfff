import { spawn, execFile } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { bootstrapConfig } from '../cli/device.js';
import { ErrorCode, errorMessage, KedgeError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import {
  KubeClient,
  Resources,
  isConflict,
  type KubeObject,
  type ResourceRef,
} from '../controller/kube/client.js';
import { startController, type RunningController } from '../controller/manager.js';
import { ensureBinaries, startControlPlane } from '../localcluster/control-plane.js';
import { docker, dockerBridgeAddress, dockerResponds } from '../localcluster/docker.js';
import { ensureLocalImages, LOCAL_IMAGES } from '../localcluster/images.js';
import { installCrds } from '../localcluster/kubectl.js';
import { ensureNatsServer, startNats } from '../localcluster/nats.js';
import {
  installExternalServiceApi,
  removeExternalServiceApi,
  waitServiceApiAvailable,
} from '../localcluster/service-api.js';
import { freePort } from '../localcluster/ports.js';
import { nodeNameFor } from '../provider/naming.js';
import { checkUpPrerequisites } from './prerequisites.js';
import { SAMPLE, sampleDeployment, sampleDevice, sampleRoute } from './sample.js';
import { Teardown } from './teardown.js';
import { watchTelemetry } from './telemetry.js';
import { waitFor } from './wait.js';
import { SDK_PORTS } from '../edgenode/hub/options.js';

const run = promisify(execFile);

export type Runtime = 'docker' | 'process';

/** Options for {@link startUp}. */
export interface UpOptions {
  /** State, logs and the device's data live here; removed again at teardown (logs stay). */
  home: string;
  /** Module runtime; by default Docker when an engine answers, else the process runtime. */
  runtime?: Runtime;
  onProgress: (line: string) => void;
  onTelemetry: (line: string) => void;
}

/** What a running `kedge up` offers the user. */
export interface UpSession {
  /** Undefined when kubectl's own default (`$KUBECONFIG`) is used. */
  kubeconfigPath: string | undefined;
  /** Directory of the kubectl that matches the cluster. */
  kubectlDir: string;
  embedded: boolean;
  runtime: Runtime;
  nodeName: string;
  pods: SamplePod[];
  logDir: string;
}

const CONTROLLER_NAMESPACE = 'kedge-system';
const CONTAINER_PREFIX = 'kedge-up-';
const MODULE_NETWORK = 'kedge-up';
const FIELD_MANAGER = 'kedge-up';
const READY_TIMEOUT_MS = 180_000;
const GONE_TIMEOUT_MS = 60_000;
const NODE_STOP_GRACE_MS = 30_000;

interface Cluster {
  client: KubeClient;
  kubeconfigPath: string | undefined;
  kubectlDir: string;
  embedded: boolean;
  clientCaPem?: string;
}

/**
 * Brings up the whole of kedge on this machine: a cluster (the current one or the embedded local
 * control plane), the controller, one device running `kedge node`, and the sample deployment.
 * Everything started is recorded in `teardown`, which the caller runs on Ctrl-C.
 */
export async function startUp(options: UpOptions, teardown: Teardown): Promise<UpSession> {
  checkUpPrerequisites();
  const logDir = path.join(options.home, 'logs');
  await mkdir(logDir, { recursive: true });
  const step = stepper(teardown);
  const natsUrl = await step('nats', () => startLocalNats(options, teardown, logDir));
  const cluster = await step('cluster', () => connectCluster(options, teardown, logDir));
  const hubPort = await freePort();
  await step('controller', () =>
    installKedge(cluster, teardown, { hubPort, logDir, natsUrl, onProgress: options.onProgress }),
  );
  const runtime = options.runtime ?? ((await dockerResponds()) ? 'docker' : 'process');
  if (runtime === 'docker') {
    await step('images', async () => {
      options.onProgress(`building the sample module image ${LOCAL_IMAGES.node} (first run only)`);
      await ensureLocalImages();
    });
  }
  await step('device', () =>
    startDevice(cluster.client, teardown, { home: options.home, logDir, runtime, hubPort }),
  );
  const nodeName = nodeNameFor(SAMPLE.namespace, SAMPLE.device);
  const pods = await step('sample', () => applySample(cluster.client, teardown, runtime, nodeName));
  await step('telemetry', async () => {
    const stop = await watchTelemetry({ natsUrl, onTelemetry: options.onTelemetry });
    teardown.add('telemetry consumer', stop);
  });
  const { kubeconfigPath, kubectlDir, embedded } = cluster;
  return { kubeconfigPath, kubectlDir, embedded, runtime, nodeName, pods, logDir };
}

type Step = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

/** Runs one start-up stage; once teardown has begun (Ctrl-C), no further stage starts. */
function stepper(teardown: Teardown): Step {
  return async (name, fn) => {
    if (teardown.started) throw new KedgeError(ErrorCode.Unavailable, `interrupted before ${name}`);
    return fn();
  };
}

/** One nats-server with JetStream, its store under the state directory; removed at teardown. */
async function startLocalNats(
  options: UpOptions,
  teardown: Teardown,
  logDir: string,
): Promise<string> {
  const binary = await ensureNatsServer(options.onProgress);
  const dataDir = path.join(options.home, 'nats');
  options.onProgress('starting nats-server with JetStream');
  const nats = await startNats({ dataDir, binary, logFile: path.join(logDir, 'nats-server.log') });
  teardown.add('nats-server', async () => {
    await nats.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  return nats.url;
}

async function connectCluster(
  options: UpOptions,
  teardown: Teardown,
  logDir: string,
): Promise<Cluster> {
  if (process.env.KUBECONFIG) {
    options.onProgress(`using the cluster of KUBECONFIG=${process.env.KUBECONFIG}`);
    const onPath = await run('sh', ['-c', 'command -v kubectl']).then(
      (r) => r.stdout.trim(),
      () => '',
    );
    const kubectlDir = onPath ? path.dirname(onPath) : await ensureBinaries(options.onProgress);
    return {
      client: KubeClient.fromConfig(),
      kubeconfigPath: undefined,
      kubectlDir,
      embedded: false,
    };
  }
  options.onProgress(
    'starting the local control plane (etcd, kube-apiserver, scheduler, controller-manager)',
  );
  const cp = await startControlPlane({ logDir, onProgress: options.onProgress });
  teardown.add('local control plane', () => cp.stop());
  return {
    client: KubeClient.fromConfig(cp.kubeconfigPath),
    kubeconfigPath: cp.kubeconfigPath,
    kubectlDir: cp.binDir,
    embedded: true,
    clientCaPem: cp.ca.certPem,
  };
}

async function installKedge(
  cluster: Cluster,
  teardown: Teardown,
  where: { hubPort: number; logDir: string; natsUrl: string; onProgress: (line: string) => void },
): Promise<void> {
  await installCrds(cluster.kubectlDir, cluster.kubeconfigPath);
  await ensureNamespace(cluster.client, CONTROLLER_NAMESPACE);
  const address = await kubeletAddress();
  const serviceApiPort = await freePort();
  // The local control plane has no metrics-server: kedge serves kubectl top itself. A cluster
  // of KUBECONFIG may have one, whose metrics.k8s.io must stay its own.
  const metricsApi = cluster.embedded;
  await installExternalServiceApi(
    { helm: await helmPath(cluster.kubectlDir), kubectlDir: cluster.kubectlDir },
    cluster.kubeconfigPath,
    { address, port: serviceApiPort, namespace: CONTROLLER_NAMESPACE, metricsApi },
  );
  teardown.add('service API registration', () =>
    removeExternalServiceApi(cluster.kubectlDir, cluster.kubeconfigPath, CONTROLLER_NAMESPACE, {
      metricsApi,
    }),
  );
  const controller: RunningController = await startController({
    client: cluster.client,
    log: createLogger({
      name: 'kedge-controller',
      file: path.join(where.logDir, 'controller.log'),
    }),
    namespace: CONTROLLER_NAMESPACE,
    nats: { servers: [where.natsUrl] },
    embeddedGateway: { port: where.hubPort, host: '127.0.0.1' },
    gatewayHostNames: ['localhost'],
    kubeletPort: await freePort(),
    kubeletAddress: address,
    serviceApiPort,
    clientCaPem: cluster.clientCaPem,
    metricsPort: 0,
    leaderElection: false,
    metricsApi,
  });
  teardown.add('kedge controller', () => controller.stop());
  await waitServiceApiAvailable(cluster.kubectlDir, cluster.kubeconfigPath).catch(
    (err: unknown) => {
      // Another cluster may lack API aggregation; everything but `kedge invoke` still works.
      if (cluster.embedded) throw err;
      where.onProgress(`warning: kedge invoke will not work here: ${errorMessage(err)}`);
    },
  );
}

/** helm beside kubectl (the embedded cluster's binaries), else on PATH, else the cached build. */
async function helmPath(kubectlDir: string): Promise<string> {
  const beside = path.join(kubectlDir, 'helm');
  if (existsSync(beside)) return beside;
  const onPath = await run('sh', ['-c', 'command -v helm']).then(
    (r) => r.stdout.trim(),
    () => '',
  );
  return onPath || path.join(await ensureBinaries(), 'helm');
}

async function ensureNamespace(client: KubeClient, name: string): Promise<void> {
  await client
    .create(
      { apiPath: '/api/v1', plural: 'namespaces' },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
    )
    .catch((err: unknown) => {
      if (!isConflict(err)) throw err;
    });
}

/**
 * The API server reaches the kubelet API (for `kubectl logs`) at this address. It refuses
 * loopback, so take the Docker bridge or else the first non-internal IPv4 address.
 */
async function kubeletAddress(): Promise<string> {
  const bridge = await dockerBridgeAddress();
  if (bridge) return bridge;
  const addresses = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  return addresses.find((a) => a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1';
}

interface DevicePlacement {
  home: string;
  logDir: string;
  runtime: Runtime;
  hubPort: number;
}

async function startDevice(
  client: KubeClient,
  teardown: Teardown,
  where: DevicePlacement,
): Promise<void> {
  await apply(client, Resources.edgeDevices(SAMPLE.namespace), sampleDevice());
  teardown.add(`EdgeDevice ${SAMPLE.device}`, () =>
    deleteAndWait(client, Resources.edgeDevices(SAMPLE.namespace), SAMPLE.device),
  );
  const dataDir = path.join(where.home, 'device');
  await mkdir(dataDir, { recursive: true });
  teardown.add('device data', () => rm(dataDir, { recursive: true, force: true }));
  if (where.runtime === 'docker') teardown.add('module containers', removeLeftoverContainers);
  const config = await bootstrapConfig(client, SAMPLE.device, {
    namespace: SAMPLE.namespace,
    hubUrl: `mqtts://localhost:${where.hubPort}`,
    controllerNamespace: CONTROLLER_NAMESPACE,
    dataDir,
    runtime: where.runtime,
  });
  const nodeConfig = {
    ...config,
    metrics: { port: 0 },
    agent: {
      runtime: where.runtime,
      stopModulesOnExit: true,
      ...(where.runtime === 'docker'
        ? { network: MODULE_NETWORK, containerNamePrefix: CONTAINER_PREFIX }
        : {}),
    },
    hub: {
      // Process modules dial 8883 on localhost (IOTEDGE_GATEWAYHOSTNAME carries no port);
      // containers get 8883 on the module network whatever this port is.
      tlsPort: where.runtime === 'process' ? SDK_PORTS.mqtts : await freePort(),
      workloadPort: await freePort(),
      methodsPort: await freePort(),
    },
  };
  const configPath = path.join(dataDir, 'node.yaml');
  await writeFile(configPath, stringify(nodeConfig), { mode: 0o600 });
  const stop = spawnNode(configPath, path.join(where.logDir, 'node.log'));
  teardown.add(`kedge node (device ${SAMPLE.device})`, stop);
}

/** Starts `kedge node` in a process group of its own, so a terminal Ctrl-C reaches only kedge up. */
function spawnNode(configPath: string, logFile: string): () => Promise<void> {
  const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [cli, 'node', '--config', configPath], {
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timedOut = await Promise.race([
      exited.then(() => false),
      sleep(NODE_STOP_GRACE_MS, true, { ref: false }),
    ]);
    if (timedOut) {
      child.kill('SIGKILL');
      await exited;
    }
  };
}

async function removeLeftoverContainers(): Promise<void> {
  const ids = await docker(['ps', '-aq', '--filter', `name=^${CONTAINER_PREFIX}`]);
  if (ids) await docker(['rm', '-f', ...ids.split('\n')]);
  await docker(['network', 'rm', MODULE_NETWORK]).catch(() => undefined);
}

async function applySample(
  client: KubeClient,
  teardown: Teardown,
  runtime: Runtime,
  nodeName: string,
): Promise<SamplePod[]> {
  const deployments = Resources.edgeDeployments(SAMPLE.namespace);
  const routes = Resources.routes(SAMPLE.namespace);
  await apply(client, routes, sampleRoute());
  teardown.add(`Route ${SAMPLE.route}`, () => client.delete(routes, SAMPLE.route));
  await apply(client, deployments, sampleDeployment(runtime));
  teardown.add(`EdgeDeployment ${SAMPLE.deployment} and its modules`, async () => {
    await client.delete(deployments, SAMPLE.deployment);
    await waitFor('the sample pods to go', GONE_TIMEOUT_MS, async () =>
      (await podsOn(client, nodeName)).length === 0 ? true : undefined,
    );
  });
  const ready = async (): Promise<SamplePod[] | undefined> => {
    const pods = await podsOn(client, nodeName);
    const running = pods.length > 0 && pods.every((p) => p.status?.phase === 'Running');
    const deployment = await client.get<KubeObject & { status?: Record<string, unknown> }>(
      deployments,
      SAMPLE.deployment,
    );
    const succeeded = deployment.status?.reportedSuccessfulCount === 1;
    if (!running || !succeeded) return undefined;
    return pods.map((p) => ({
      name: p.metadata.name ?? '',
      containers: (p.spec?.containers ?? []).map((c) => c.name),
    }));
  };
  return waitFor('the sample modules to run', READY_TIMEOUT_MS, ready, teardown.signal);
}

type Pod = KubeObject & {
  spec?: { containers?: { name: string }[] };
  status?: { phase?: string };
};

/** A pod of the sample deployment and its containers (= modules). */
export interface SamplePod {
  name: string;
  containers: string[];
}

async function podsOn(client: KubeClient, nodeName: string): Promise<Pod[]> {
  const list = await client.list<Pod>(Resources.pods(SAMPLE.namespace), {
    fieldSelector: `spec.nodeName=${nodeName}`,
  });
  return list.items;
}

async function apply(client: KubeClient, ref: ResourceRef, object: KubeObject): Promise<void> {
  await client.patch(ref, object.metadata.name ?? '', object, {
    type: 'apply',
    fieldManager: FIELD_MANAGER,
    force: true,
  });
}

async function deleteAndWait(client: KubeClient, ref: ResourceRef, name: string): Promise<void> {
  await client.delete(ref, name);
  await waitFor(`${name} to be deleted`, GONE_TIMEOUT_MS, async () =>
    (await client.find(ref, name)) ? undefined : true,
  );
}
