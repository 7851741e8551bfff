import { createServer, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { checkReport } from '../common/cloudlink/report-schema.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { startKubeletApi } from '../provider/kubelet-api.js';
import { nodeNameFor } from '../provider/naming.js';
import { ensureControllerCa, publishCaCertificate, servingCertificate } from './certificates.js';
import type { TelemetryConsumer } from './cloudhub/auth.js';
import { CloudHub } from './cloudhub/server.js';
import {
  keyFor,
  POD_NODE_INDEX,
  splitKey,
  type ControllerContext,
  type PodObject,
} from './context.js';
import type { EdgeDeployment, EdgeDevice, Route } from '../crds/index.js';
import { NODE_LEASE_RENEW_MS, renewLease } from './device-node.js';
import { DeviceStates } from './device-state.js';
import { EventRecorder } from './events.js';
import { onDeviceReport, wireHandlers } from './handlers.js';
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
  hubPort: number;
  /** Host names and addresses devices use to reach the cloud hub (certificate SANs). */
  hubHostNames: string[];
  kubeletPort: number;
  /** The address the API server uses to reach the kubelet API. */
  kubeletAddress: string;
  /** CA that signs the API server's kubelet client certificate; read from the cluster when unset. */
  clientCaPem?: string;
  /** Port of /healthz, /readyz and /metrics; 0 picks one. */
  metricsPort: number;
  leaderElection: boolean;
  webhooks?: string[];
  consumers?: TelemetryConsumer[];
  /** Namespaces to watch for devices, deployments, routes and pods; empty means all. */
  watchNamespaces?: string[];
  /** Reconciles in parallel per controller. Defaults to 4. */
  concurrency?: number;
}

/** The running controller. */
export interface RunningController {
  ctx: ControllerContext;
  hubPort: number;
  kubeletPort: number;
  metricsPort: number;
  caPem: string;
  stop(): Promise<void>;
}

/** Starts informers, the cloud hub, the kubelet API and the reconcilers. */
export async function startController(opts: ControllerOptions): Promise<RunningController> {
  const metrics = new ControllerMetrics();
  opts.client.observe((method, status) =>
    metrics.apiRequests.inc({ method, code: String(status) }),
  );
  let ready = false;
  const http = await startHealthServer(opts.metricsPort, metrics, () => ready);
  const elector = opts.leaderElection
    ? new LeaderElector(opts.client, { namespace: opts.namespace }, opts.log)
    : undefined;
  if (elector) await elector.acquire(() => process.emit('SIGTERM'));
  const ca = await ensureControllerCa(opts.client, opts.namespace);
  await publishCaCertificate(opts.client, opts.namespace, ca.certPem);
  const states = new DeviceStates();
  const hub = await CloudHub.start({
    port: opts.hubPort,
    tls: servingCertificate(ca, 'kedge-cloud-hub', opts.hubHostNames),
    keys: (ns, device) => states.peek(keyFor(ns, device))?.keys,
    consumers: opts.consumers,
    webhooks: opts.webhooks,
    log: opts.log.child({ component: 'cloudhub' }),
  });
  const ctx = buildContext(opts, metrics, states, hub);
  // A missing or bad value must never leave the controller without workers.
  const concurrency =
    Number.isInteger(opts.concurrency) && opts.concurrency! > 0
      ? opts.concurrency!
      : DEFAULT_CONCURRENCY;
  const queues = startQueues(ctx, concurrency);
  wireHandlers(ctx);
  wireHub(ctx);
  for (const informer of Object.values(ctx.informers)) informer.start();
  await Promise.all(Object.values(ctx.informers).map((i) => i.synced()));
  const kubelet = await startKubeletApi(
    {
      port: opts.kubeletPort,
      tls: servingCertificate(ca, 'kedge-kubelet-api', [opts.kubeletAddress]),
      clientCaPem: opts.clientCaPem ?? (await clusterClientCa(opts.client)),
    },
    {
      client: opts.client,
      log: opts.log.child({ component: 'kubelet-api' }),
      podNode: (ns, pod) => ctx.informers.pods.get(keyFor(ns, pod))?.spec.nodeName,
      streamLogs: (ns, device, req) => hub.streamLogs(ns, device, req),
      invokeMethod: (ns, device, call) => hub.invokeMethod(ns, device, call),
    },
  );
  const loops = [...startLoops(ctx), sampleQueueDepths(ctx, queues)];
  ready = true;
  opts.log.info({ hubPort: hub.port, kubeletPort: portOf(kubelet) }, 'kedge controller running');
  return {
    ctx,
    hubPort: hub.port,
    kubeletPort: portOf(kubelet),
    metricsPort: portOf(http),
    caPem: ca.certPem,
    stop: async () => {
      loops.forEach(clearInterval);
      Object.values(queues).forEach((q) => q.stop());
      Object.values(ctx.informers).forEach((i) => i.stop());
      elector?.stop();
      await hub.close();
      await new Promise<void>((r) => kubelet.close(() => r()));
      kubelet.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

function buildContext(
  opts: ControllerOptions,
  metrics: ControllerMetrics,
  states: DeviceStates,
  hub: CloudHub,
): ControllerContext {
  const log = opts.log;
  const watched = opts.watchNamespaces ?? [];
  const informers = {
    devices: namespacedCache<EdgeDevice & KubeObject>(
      opts.client,
      Resources.edgeDevices,
      watched,
      log,
    ),
    deployments: namespacedCache<EdgeDeployment & KubeObject>(
      opts.client,
      Resources.edgeDeployments,
      watched,
      log,
    ),
    routes: namespacedCache<Route & KubeObject>(opts.client, Resources.routes, watched, log),
    pods: namespacedCache<PodObject>(opts.client, Resources.pods, watched, log),
    nodes: new Informer<KubeObject>(opts.client, Resources.nodes, log, 'type=virtual-kubelet'),
    namespaces: new Informer<KubeObject>(opts.client, Resources.namespaces, log),
  };
  informers.pods.addIndex(POD_NODE_INDEX, (pod) => pod.spec.nodeName);
  const noop = (): void => undefined;
  return {
    client: opts.client,
    log,
    events: new EventRecorder(opts.client, log),
    states,
    hub,
    metrics,
    kubelet: { address: opts.kubeletAddress, port: opts.kubeletPort },
    informers,
    enqueue: { device: noop, desired: noop, deployment: noop, route: noop, pod: noop },
  };
}

/** Starts one work queue per controller; returns them by controller name. */
function startQueues(ctx: ControllerContext, concurrency: number): Record<string, WorkQueue> {
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
    void queue.run();
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

function wireHub(ctx: ControllerContext): void {
  const hub = ctx.hub;
  hub.on('connected', (ns, device) => {
    const state = ctx.states.get(keyFor(ns, device));
    state.connected = true;
    state.since = new Date();
    state.lastSeen = new Date();
    ctx.enqueue.device(keyFor(ns, device));
    ctx.enqueue.desired(keyFor(ns, device));
  });
  hub.on('disconnected', (ns, device) => markOffline(ctx, ns, device));
  hub.on('heartbeat', (ns, device) => {
    const state = ctx.states.get(keyFor(ns, device));
    state.lastSeen = new Date();
    if (!state.connected && hub.isConnected(ns, device)) {
      state.connected = true;
      state.since = new Date();
      ctx.enqueue.device(keyFor(ns, device));
    }
  });
  hub.on('reported', (ns, device, report) => acceptReport(ctx, ns, device, report));
  hub.on('telemetry', (_ns, _device, message) =>
    ctx.metrics.telemetryMessages.inc(message.messages.length),
  );
  hub.on('denied', () => ctx.metrics.deniedRequests.inc());
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
    ctx.metrics.connectedDevices.set(ctx.hub.connectedDevices);
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

async function clusterClientCa(client: KubeClient): Promise<string> {
  const cm = await client.get<{ metadata: object; data?: Record<string, string> }>(
    Resources.configMaps('kube-system'),
    'extension-apiserver-authentication',
  );
  return cm.data?.['client-ca-file'] ?? '';
}

async function startHealthServer(
  port: number,
  metrics: ControllerMetrics,
  isReady: () => boolean,
): Promise<HttpServer> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    if (req.url === '/readyz') {
      res.statusCode = isReady() ? 200 : 503;
      return void res.end(isReady() ? 'ok' : 'starting');
    }
    if (req.url === '/metrics') {
      void metrics.registry.metrics().then((text) => {
        res.setHeader('content-type', metrics.registry.contentType);
        res.end(text);
      });
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(port, resolve));
  return server;
}

function portOf(server: HttpServer | HttpsServer): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}
