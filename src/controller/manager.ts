import type { Server as HttpServer } from 'node:http';
import { startHealthServer } from '../common/health-server.js';
import type { Server as HttpsServer } from 'node:https';
import { checkReport } from '../common/cloudlink/report-schema.js';
import { checkUsage } from '../common/cloudlink/usage.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { startKubeletApi } from '../provider/kubelet-api.js';
import { nodeNameFor } from '../provider/naming.js';
import { nextPressure, pressureChanged } from '../provider/pressure.js';
import {
  ensureControllerCa,
  publishCaCertificate,
  renewingCertificate,
  type CertificateTiming,
  type RenewingCertificate,
} from './certificates.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, provisionCloudPlane, type NatsSettings } from '../common/cloudplane/nats.js';
import { Gateway } from '../gateway/gateway.js';
import type { DeviceBackend } from './backend/device-backend.js';
import { NatsDeviceBackend } from './backend/nats-backend.js';
import { ensureGatewayTls, gatewayTlsTiming } from './gateway-tls.js';
import type { KeyPair } from '../common/pki.js';
import { WebhookConsumers } from './webhooks.js';
import { assignModules } from './desired.js';
import {
  keyFor,
  podsOnNode,
  POD_NODE_INDEX,
  splitKey,
  type ControllerContext,
  type PodObject,
} from './context.js';
import type { EdgeDeployment, EdgeDevice, Route } from '../crds/index.js';
import { NODE_LEASE_RENEW_MS, renewLease } from './device-node.js';
import { DeviceStates } from './device-state.js';
import { EventRecorder } from './events.js';
import { DEVICE_KEY_FOR_LABEL } from './device-keys.js';
import { onDeviceReport, wireHandlers } from './handlers.js';
import { leafParentOf } from './leaf-devices.js';
import { Resources, type KubeClient, type KubeObject } from './kube/client.js';
import { Informer } from './kube/informer.js';
import { namespacedCache } from './kube/informer-set.js';
import { LeaderElector } from './leader.js';
import { ControllerMetrics } from './metrics.js';
import { reconcileDeployment } from './reconcile-deployment.js';
import { reconcileDesired } from './reconcile-desired.js';
import { reconcileDevice } from './reconcile-device.js';
import { reconcilePod } from './reconcile-pod.js';
import { reconcileRoute } from './reconcile-route.js';
import { nodeMetrics, podMetrics, resourceUsageOf } from './resource-usage.js';
import { ensureApiServiceCaBundle, METRICS_APISERVICE_NAME } from './service-api/apiservice.js';
import { loadFrontProxyConfig, type FrontProxyConfig } from './service-api/front-proxy.js';
import { invokeSubresource } from './service-api/invoke.js';
import { telemetrySubresource } from './service-api/telemetry.js';
import { twinSubresource } from './service-api/twin.js';
import { c2dSubresource } from './service-api/c2d.js';
import { APISERVICE_NAME, startServiceApi } from './service-api/server.js';
import type { MetricsSource } from './service-api/metrics-api.js';
import { WorkQueue, type Reconcile } from './workqueue.js';

/** Reconciles in parallel per kind when not configured. */
const DEFAULT_CONCURRENCY = 4;
/** How often device liveness is checked against each device's offline threshold. */
const LIVENESS_CHECK_MS = 1_000;
/**
 * Lease renewals are spread over the renewal interval in this many slots, each device in a fixed
 * one, so a fleet of 1,000 makes a steady 100 writes/s instead of a burst of 1,000 every 10 s.
 */
const LEASE_SLOTS = 20;
/** How often the work-queue depth gauges are refreshed. */
const QUEUE_DEPTH_SAMPLE_MS = 1_000;
/** Offline threshold when the EdgeDevice does not set one (the kubelet's 40 s lease). */
export const DEFAULT_OFFLINE_AFTER_SECS = 40;

/** Options of `kedge controller`. */
export interface ControllerOptions {
  client: KubeClient;
  log: Logger;
  /** Namespace of the controller: its Lease and CA Secret live there. */
  namespace: string;
  /** NATS, where the cloud plane keeps and moves everything. */
  nats: NatsSettings;
  /** JetStream replicas of kedge's streams and buckets: 1 for one server, 3 in a cluster. */
  streamReplicas?: number;
  /** Runs a gateway inside the controller (small installs, `kedge up`, tests). */
  embeddedGateway?: { port: number; host?: string };
  /** Host names devices use to reach the gateways (certificate SANs). */
  gatewayHostNames: string[];
  kubeletPort: number;
  /** The address the API server uses to reach the kubelet API. */
  kubeletAddress: string;
  /** CA that signs the API server's kubelet client certificate; read from the cluster when unset. */
  clientCaPem?: string;
  /** Port of /healthz, /readyz and /metrics; 0 picks one. */
  metricsPort: number;
  leaderElection: boolean;
  /** Namespaces to watch for devices, deployments, routes and pods; empty means all. */
  watchNamespaces?: string[];
  /** Reconciles in parallel per controller. Defaults to 4. */
  concurrency?: number;
  /** Port of the service API (the aggregated `api.kedge.io`); 0 picks one. Defaults to 0. */
  serviceApiPort?: number;
  /** The Service in `namespace` the APIService points at (certificate SANs). Defaults to `kedge-api`. */
  serviceApiService?: string;
  /**
   * Also serve `metrics.k8s.io/v1beta1` (what `kubectl top` reads) for kedge nodes and their
   * pods, through the service API. Only for a cluster without metrics-server. Defaults to false.
   */
  metricsApi?: boolean;
  /** Validity and renewal of the kubelet API, service API and gateway certificates. */
  certificates?: CertificateTiming;
}

/** The Service name the chart gives the service API when the release is named `kedge`. */
export const DEFAULT_SERVICE_API_SERVICE = 'kedge-api';

/** The running controller. */
export interface RunningController {
  ctx: ControllerContext;
  /** Port of the embedded gateway, 0 without one. */
  gatewayPort: number;
  kubeletPort: number;
  serviceApiPort: number;
  metricsPort: number;
  caPem: string;
  stop(): Promise<void>;
}

/** Starts informers, the device backend (and gateway), the kubelet API and the reconcilers. */
export async function startController(opts: ControllerOptions): Promise<RunningController> {
  const metrics = new ControllerMetrics();
  opts.client.observe((method, status) =>
    metrics.apiRequests.inc({ method, code: String(status) }),
  );
  let ready = false;
  const http = await startHealthServer(opts.metricsPort, metrics.registry, () => ready);
  const elector = opts.leaderElection
    ? new LeaderElector(opts.client, { namespace: opts.namespace }, opts.log)
    : undefined;
  if (elector) await elector.acquire(() => process.emit('SIGTERM'));
  const ca = await ensureControllerCa(opts.client, opts.namespace);
  await publishCaCertificate(opts.client, opts.namespace, ca.certPem);
  const { nc, gateway, backend } = await startCloudPlane(opts, ca);
  const ctx = buildContext(opts, metrics, new DeviceStates(), backend);
  const webhooks = new WebhookConsumers(
    nc,
    opts.client,
    opts.log.child({ component: 'webhooks' }),
    () => ctx.informers.devices.list().map((d) => d.metadata.namespace!),
  );
  const queues = createQueues(ctx, concurrencyOf(opts));
  wireHandlers(ctx);
  wireBackend(ctx);
  for (const informer of Object.values(ctx.informers)) informer.start();
  await Promise.all(Object.values(ctx.informers).map((i) => i.synced()));
  // Workers start only on synced caches: a key seen before then (a device's report, say) would
  // read as "object deleted" and forget a live device.
  for (const queue of Object.values(queues)) void queue.run();
  const certs = servingCertificates(opts, ca);
  const clientCaPem = opts.clientCaPem ?? (await clusterClientCa(opts.client));
  const kubelet = await startKubeletApi(
    { port: opts.kubeletPort, tls: certs.kubelet.current, clientCaPem },
    {
      client: opts.client,
      log: opts.log.child({ component: 'kubelet-api' }),
      pod: (ns, name) => {
        const pod = ctx.informers.pods.get(keyFor(ns, name));
        return (
          pod && {
            nodeName: pod.spec.nodeName,
            containers: pod.spec.containers.map((c) => c.name),
            ports: Object.fromEntries(
              pod.spec.containers.map((c) => [c.name, (c.ports ?? []).map((p) => p.containerPort)]),
            ),
          }
        );
      },
      moduleOwner: (nodeName, module) => moduleOwner(ctx, nodeName, module),
      streamLogs: (ns, device, req) => backend.streamLogs(ns, device, req),
      openSession: (ns, device, open) => backend.openSession(ns, device, open),
      resourceUsage: (nodeName) => resourceUsageOf(ctx, nodeName),
    },
  );
  certs.kubelet.serve(kubelet, { ca: clientCaPem });
  const frontProxy = await frontProxyConfig(opts);
  const serviceApi = await startServiceApi(
    { port: opts.serviceApiPort ?? 0, tls: certs.serviceApi.current },
    {
      client: opts.client,
      log: opts.log.child({ component: 'service-api' }),
      frontProxy,
      deviceExists: (ns, name) => ctx.informers.devices.get(keyFor(ns, name)) !== undefined,
      subresources: [
        invokeSubresource(
          (ns, device, call) => backend.invokeMethod(ns, device, call),
          (ns, device) => leafParentOf(ctx, ns, device),
        ),
        twinSubresource(backend, (ns, device) => leafParentOf(ctx, ns, device)),
        c2dSubresource(
          (ns, device, message) => backend.sendC2D(ns, device, message),
          (ns, device) => leafParentOf(ctx, ns, device),
        ),
        telemetrySubresource((ns, device, query) => backend.recentTelemetry(ns, device, query)),
      ],
      ...metricsSource(opts, ctx),
    },
  );
  certs.serviceApi.serve(serviceApi, frontProxy.clientCaPem ? { ca: frontProxy.clientCaPem } : {});
  await setApiServiceCaBundles(opts, ca.certPem);
  const loops = [
    ...startLoops(ctx),
    sampleQueueDepths(ctx, queues),
    renewGatewayTls(opts, ca, (tls) => gateway?.setCertificate(tls)),
  ];
  webhooks.start();
  ready = true;
  opts.log.info(
    {
      gatewayPort: gateway?.port,
      kubeletPort: portOf(kubelet),
      serviceApiPort: portOf(serviceApi),
    },
    'kedge controller running',
  );
  return {
    ctx,
    gatewayPort: gateway?.port ?? 0,
    kubeletPort: portOf(kubelet),
    serviceApiPort: portOf(serviceApi),
    metricsPort: portOf(http),
    caPem: ca.certPem,
    stop: async () => {
      loops.forEach(clearInterval);
      Object.values(queues).forEach((q) => q.stop());
      Object.values(ctx.informers).forEach((i) => i.stop());
      ctx.events.close();
      elector?.stop();
      await webhooks.stop();
      await gateway?.close();
      await backend.close();
      await drain(nc);
      certs.kubelet.stop();
      certs.serviceApi.stop();
      for (const server of [kubelet, serviceApi]) {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeAllConnections();
        await closed;
      }
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

/** The controller's APIServices get its CA as caBundle; a failure only leaves them unreachable. */
async function setApiServiceCaBundles(opts: ControllerOptions, caPem: string): Promise<void> {
  const names = [APISERVICE_NAME, ...(opts.metricsApi ? [METRICS_APISERVICE_NAME] : [])];
  for (const name of names)
    await ensureApiServiceCaBundle(opts.client, caPem, opts.log, name).catch((err: unknown) =>
      opts.log.warn({ reason: errorMessage(err), name }, 'cannot set the APIService caBundle'),
    );
}

/** `metrics.k8s.io` for the service API, when asked for. */
function metricsSource(
  opts: ControllerOptions,
  ctx: ControllerContext,
): { metrics?: MetricsSource } {
  if (!opts.metricsApi) return {};
  return { metrics: { nodes: () => nodeMetrics(ctx), pods: (ns) => podMetrics(ctx, ns) } };
}

function buildContext(
  opts: ControllerOptions,
  metrics: ControllerMetrics,
  states: DeviceStates,
  backend: DeviceBackend,
): ControllerContext {
  const log = opts.log;
  const watched = opts.watchNamespaces ?? [];
  const informers = {
    devices: namespacedCache<EdgeDevice & KubeObject>(opts.client, Resources.edgeDevices, watched, {
      log,
    }),
    deployments: namespacedCache<EdgeDeployment & KubeObject>(
      opts.client,
      Resources.edgeDeployments,
      watched,
      { log },
    ),
    routes: namespacedCache<Route & KubeObject>(opts.client, Resources.routes, watched, { log }),
    pods: namespacedCache<PodObject>(opts.client, Resources.pods, watched, { log }),
    nodes: new Informer<KubeObject>(opts.client, Resources.nodes, log, 'type=virtual-kubelet'),
    namespaces: new Informer<KubeObject>(opts.client, Resources.namespaces, log),
    keySecrets: namespacedCache<KubeObject>(opts.client, Resources.secrets, watched, {
      log,
      labelSelector: DEVICE_KEY_FOR_LABEL,
    }),
  };
  informers.pods.addIndex(POD_NODE_INDEX, (pod) => pod.spec.nodeName);
  const noop = (): void => undefined;
  return {
    client: opts.client,
    log,
    events: new EventRecorder(opts.client, log, metrics.eventsDropped),
    states,
    backend,
    metrics,
    kubelet: { address: opts.kubeletAddress, port: opts.kubeletPort },
    informers,
    enqueue: { device: noop, desired: noop, deployment: noop, route: noop, pod: noop },
  };
}

/** Creates one work queue per controller (keys queue up until they run); returns them by name. */
function createQueues(ctx: ControllerContext, concurrency: number): Record<string, WorkQueue> {
  const named: Record<string, WorkQueue> = {};
  const make = (
    name: string,
    reconcile: (c: ControllerContext, key: string) => ReturnType<Reconcile>,
  ): WorkQueue => {
    const queue = new WorkQueue((key) => reconcile(ctx, key), {
      concurrency,
      observer: {
        reconciled: (key, ms, outcome) => {
          ctx.log.debug({ controller: name, key, ms: Math.round(ms), outcome }, 'reconciled');
          ctx.metrics.reconciles.inc({ controller: name, outcome });
          ctx.metrics.reconcileSeconds.observe({ controller: name }, ms / 1000);
        },
        failed: (key, err) =>
          ctx.log.warn(
            { controller: name, key, reason: errorMessage(err) },
            'reconcile failed; will retry',
          ),
      },
    });
    named[name] = queue;
    return queue;
  };
  const queues = {
    device: make('edgedevice', reconcileDevice),
    desired: make('desired', reconcileDesired),
    deployment: make('edgedeployment', reconcileDeployment),
    route: make('route', reconcileRoute),
    pod: make('pod', reconcilePod),
  };
  ctx.enqueue = {
    device: (k) => queues.device.add(k),
    desired: (k) => queues.desired.add(k),
    deployment: (k) => queues.deployment.add(k),
    route: (k) => queues.route.add(k),
    pod: (k) => queues.pod.add(k),
  };
  return named;
}

function wireBackend(ctx: ControllerContext): void {
  const backend = ctx.backend;
  backend.on('connected', (ns, device) => {
    const state = ctx.states.get(keyFor(ns, device));
    state.connected = true;
    state.since = new Date();
    state.lastSeen = new Date();
    // Reports and presence travel apart: a report that came while the device counted as offline
    // updated no pod, so the pods look again now.
    onDeviceReport(ctx, ns, device);
    ctx.enqueue.desired(keyFor(ns, device));
  });
  backend.on('disconnected', (ns, device) => markOffline(ctx, ns, device));
  backend.on('heartbeat', (ns, device) => {
    const state = ctx.states.get(keyFor(ns, device));
    state.lastSeen = new Date();
    if (!state.connected && backend.isConnected(ns, device)) {
      state.connected = true;
      state.since = new Date();
      onDeviceReport(ctx, ns, device);
    }
  });
  backend.on('reported', (ns, device, report) => acceptReport(ctx, ns, device, report));
  backend.on('usage', (ns, device, usage) => acceptUsage(ctx, ns, device, usage));
}

/**
 * Keeps a device's usage sample when it matches the usage schema, and reconciles the device when
 * its readings change a pressure condition. A malformed sample is dropped, counted and logged.
 */
export function acceptUsage(
  ctx: ControllerContext,
  ns: string,
  device: string,
  usage: unknown,
): void {
  const checked = checkUsage(usage);
  if ('problem' in checked) {
    ctx.metrics.usageRejected.inc();
    ctx.log.warn(
      { device: `${ns}/${device}`, problem: checked.problem },
      'dropped a malformed usage sample',
    );
    return;
  }
  const key = keyFor(ns, device);
  const state = ctx.states.get(key);
  const pressure = nextPressure(state.pressure, checked.usage.node, Date.now());
  const changed = pressureChanged(state.pressure, pressure);
  if (state.usage && checked.usage.node.atMs > state.usage.node.atMs)
    state.previousUsage = state.usage;
  state.usage = checked.usage;
  state.pressure = pressure;
  if (changed) ctx.enqueue.device(key);
}

/**
 * Keeps a device's report when it matches the report schema. A malformed one is dropped, counted
 * and logged: every reconcile of the device and of its namespace's deployments reads it.
 */
export function acceptReport(
  ctx: ControllerContext,
  ns: string,
  device: string,
  report: unknown,
): void {
  const checked = checkReport(report);
  if ('problem' in checked) {
    ctx.metrics.reportsRejected.inc();
    ctx.log.warn(
      { device: `${ns}/${device}`, problem: checked.problem },
      'dropped a malformed device report',
    );
    return;
  }
  const state = ctx.states.get(keyFor(ns, device));
  state.report = checked.report;
  state.lastSeen = new Date();
  onDeviceReport(ctx, ns, device);
}

function markOffline(ctx: ControllerContext, ns: string, device: string): void {
  const state = ctx.states.peek(keyFor(ns, device));
  if (!state?.connected) return;
  state.connected = false;
  state.since = new Date();
  // Readings from before the outage say nothing about the device now.
  state.usage = undefined;
  state.previousUsage = undefined;
  state.pressure = undefined;
  ctx.log.info({ device: `${ns}/${device}` }, 'device went offline');
  onDeviceReport(ctx, ns, device);
}

function startLoops(ctx: ControllerContext): NodeJS.Timeout[] {
  let slot = 0;
  // A renewal still in flight is not started again: when the API server is slower than the
  // renewal interval, piling up renewals only starves every other request and grows memory.
  const renewing = new Set<string>();
  const leases = setInterval(() => {
    const current = slot;
    slot = (slot + 1) % LEASE_SLOTS;
    for (const [key, state] of ctx.states.entries()) {
      if (!state.connected || state.nodeRefusal || leaseSlot(key) !== current) continue;
      if (renewing.has(key)) continue;
      const { namespace, name } = splitKey(key);
      renewing.add(key);
      renewLease(ctx, nodeNameFor(namespace, name))
        .catch((err: unknown) =>
          ctx.log.warn({ key, reason: errorMessage(err) }, 'lease renewal failed'),
        )
        .finally(() => renewing.delete(key));
    }
  }, NODE_LEASE_RENEW_MS / LEASE_SLOTS);
  const liveness = setInterval(() => {
    ctx.metrics.connectedDevices.set(ctx.backend.connectedDevices);
    for (const [key, state] of ctx.states.entries()) {
      const device = ctx.informers.devices.get(key);
      const limitMs =
        (device?.spec.heartbeat?.offlineAfterSecs ?? DEFAULT_OFFLINE_AFTER_SECS) * 1000;
      if (state.connected && state.lastSeen && Date.now() - state.lastSeen.getTime() > limitMs) {
        const { namespace, name } = splitKey(key);
        markOffline(ctx, namespace, name);
      }
    }
  }, LIVENESS_CHECK_MS);
  return [leases, liveness];
}

/** Reconciles in parallel per kind; a missing or bad value must never leave no workers. */
function concurrencyOf(opts: ControllerOptions): number {
  return Number.isInteger(opts.concurrency) && opts.concurrency! > 0
    ? opts.concurrency!
    : DEFAULT_CONCURRENCY;
}

/** Connects to NATS, provisions the streams and buckets, and starts the backend (and gateway). */
async function startCloudPlane(
  opts: ControllerOptions,
  ca: KeyPair,
): Promise<{ nc: NatsConnection; gateway: Gateway | undefined; backend: NatsDeviceBackend }> {
  const nc = await connectNats(opts.nats, 'kedge-controller', opts.log);
  await provisionCloudPlane(nc, { replicas: opts.streamReplicas ?? 1 });
  const gatewayTls = await ensureGatewayTls(opts.client, opts.namespace, ca, gatewayTlsWant(opts));
  const gateway = await startEmbeddedGateway(opts, nc, gatewayTls);
  const backend = await NatsDeviceBackend.start(nc, opts.log.child({ component: 'backend' }));
  return { nc, gateway, backend };
}

/** The in-process gateway of `--embedded-gateway`, or undefined. */
async function startEmbeddedGateway(
  opts: ControllerOptions,
  nc: NatsConnection,
  tls: KeyPair,
): Promise<Gateway | undefined> {
  if (!opts.embeddedGateway) return undefined;
  const { port, host } = opts.embeddedGateway;
  return Gateway.start({ nc, port, host, tls, log: opts.log.child({ component: 'gateway' }) });
}

function gatewayTlsWant(opts: ControllerOptions): Parameters<typeof ensureGatewayTls>[3] {
  return { hostNames: opts.gatewayHostNames, timing: opts.certificates };
}

/** Keeps Secret kedge-gateway-tls current; the embedded gateway serves a renewal at once. */
function renewGatewayTls(
  opts: ControllerOptions,
  ca: KeyPair,
  onRenewed: (tls: KeyPair) => void,
): NodeJS.Timeout {
  return setInterval(() => {
    ensureGatewayTls(opts.client, opts.namespace, ca, gatewayTlsWant(opts))
      .then(onRenewed)
      .catch((err: unknown) =>
        opts.log.warn({ reason: errorMessage(err) }, 'renewing the gateway certificate failed'),
      );
  }, gatewayTlsTiming(opts.certificates).checkEveryMs);
}

/** Keeps kedge_controller_queue_depth current, so a backlog shows on /metrics. */
function sampleQueueDepths(
  ctx: ControllerContext,
  queues: Record<string, WorkQueue>,
): NodeJS.Timeout {
  return setInterval(() => {
    for (const [name, queue] of Object.entries(queues))
      ctx.metrics.queueDepth.set({ controller: name }, queue.depth);
  }, QUEUE_DEPTH_SAMPLE_MS);
}

/** The renewal slot of a device: a stable FNV-1a hash of its key. */
export function leaseSlot(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % LEASE_SLOTS;
}

/**
 * The kubelet API and service API certificates, renewed while the controller runs. The gateways'
 * certificate is renewed through its Secret (gateway-tls.ts), with the same timing.
 */
function servingCertificates(
  opts: ControllerOptions,
  ca: Parameters<typeof renewingCertificate>[0],
): { kubelet: RenewingCertificate; serviceApi: RenewingCertificate } {
  const service = opts.serviceApiService ?? DEFAULT_SERVICE_API_SERVICE;
  const log = opts.log.child({ component: 'certificates' });
  return {
    kubelet: renewingCertificate(
      ca,
      { commonName: 'kedge-kubelet-api', altNames: [opts.kubeletAddress] },
      opts.certificates,
      log,
    ),
    serviceApi: renewingCertificate(
      ca,
      {
        commonName: 'kedge-service-api',
        // The aggregator verifies the name `<service>.<namespace>.svc`.
        altNames: [
          `${service}.${opts.namespace}.svc`,
          `${service}.${opts.namespace}.svc.cluster.local`,
        ],
      },
      opts.certificates,
      log,
    ),
  };
}

/** The pod (`namespace/name`) whose container is module `module` on the node's device. */
function moduleOwner(ctx: ControllerContext, nodeName: string, module: string): string | undefined {
  const pods = podsOnNode(ctx, nodeName).map((pod) => ({ pod, env: {}, registryCredentials: [] }));
  const owner = assignModules(pods).owners.get(module)?.pod;
  return owner && keyFor(owner.metadata.namespace, owner.metadata.name);
}

/** The front-proxy settings; without them the service API answers every request with 401. */
async function frontProxyConfig(opts: ControllerOptions): Promise<FrontProxyConfig> {
  const none: FrontProxyConfig = {
    clientCaPem: '',
    allowedNames: [],
    usernameHeaders: [],
    uidHeaders: [],
    groupHeaders: [],
    extraHeaderPrefixes: [],
  };
  const config = await loadFrontProxyConfig(opts.client).catch((err: unknown) => {
    opts.log.warn({ reason: errorMessage(err) }, 'cannot read the front-proxy configuration');
    return none;
  });
  if (!config.clientCaPem)
    opts.log.warn('the API server has no front-proxy CA: the service API refuses every request');
  return config;
}

async function clusterClientCa(client: KubeClient): Promise<string> {
  const cm = await client.get<{ metadata: object; data?: Record<string, string> }>(
    Resources.configMaps('kube-system'),
    'extension-apiserver-authentication',
  );
  return cm.data?.['client-ca-file'] ?? '';
}

function portOf(server: HttpServer | HttpsServer): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

/** Flushes what is still buffered for NATS, then closes the connection. */
async function drain(nc: NatsConnection): Promise<void> {
  await nc.drain().catch(() => nc.close());
}
