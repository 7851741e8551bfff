/**
 * The kedge hub as a library: `new Hub(options)`, `start()`, `applyConfig()`, `stop()`. It composes
 * the broker, the IoT Hub protocol, routing, twins, methods, store-and-forward and the workload
 * API, so `kedge node` can run it next to the agent and the cloud link.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import type { LeafIdentity } from '../../common/cloudlink/protocol.js';
import { c2dTopic } from '../../common/iothub/index.js';
import { createLogger, type Logger } from '../../common/logger.js';
import type { ModuleIdentityProvider } from '../../common/module-identity.js';
import { HubBroker } from './broker.js';
import { IdentityRegistry } from './identities.js';
import { HubModuleIdentityProvider } from './identity-provider.js';
import { HubMetrics } from './metrics.js';
import { addressList, sdkPortHosts } from './listen.js';
import { MethodApi } from './method-api.js';
import { EDGE_AGENT_MODULE_ID } from '../agent/edge-agent-methods.js';
import { MethodCalls, type MethodResult } from './methods.js';
import { MqttWebSockets } from './mqtt-ws.js';
import { resolveHubOptions, SDK_PORTS, type HubOptions, type HubOptionsInput } from './options.js';
import { ensureHubPki, issueServerCert, renewAtMs, type HubPki } from './pki-store.js';
import { Protocol } from './protocol.js';
import type { DurableQueue } from './queue/durable-queue.js';
import { MemoryQueue } from './queue/memory-queue.js';
import { SqliteQueue } from './queue/sqlite-queue.js';
import { SessionJournal } from './sessions/session-journal.js';
import { SessionStore } from './sessions/session-store.js';
import { Router, routeSpecs } from './router.js';
import { TwinStore } from './twins.js';
import { Forwarder } from './upstream/forwarder.js';
import { MqttUpstream } from './upstream/mqtt-upstream.js';
import { FileUpstream, NoUpstream, StdoutUpstream } from './upstream/sinks.js';
import type { Target, Upstream } from './upstream/upstream.js';
import { WorkloadApi } from './workload-api.js';

/** The parts of the configuration that can change while the hub runs. */
export type HubConfigUpdate = Partial<
  Pick<HubOptions, 'routes' | 'modules' | 'leafDevices'> & { timeToLiveSecs: number }
>;

/** Bound ports (useful when options asked for port 0). */
export interface HubPorts {
  tls: number;
  plain: number | null;
  workload: number | null;
  /**
   * The HTTPS direct-method API, which also serves MQTT over WebSockets unless
   * `mqttWebSockets` is false; null when disabled.
   */
  methods: number | null;
}

/** setTimeout's longest delay (about 24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Renewal runs at most this often, whatever the configured lifetime. */
const MIN_RENEW_INTERVAL_MS = 1_000;
/** A failed renewal (e.g. a full disk) is retried after this long. */
const RENEW_RETRY_MS = 60_000;

const DESIRED_FILTER = '$iothub/twin/PATCH/properties/desired/#';
const METHODS_FILTER = '$iothub/methods/POST/#';

interface Running {
  pki: HubPki;
  identities: IdentityRegistry;
  twins: TwinStore;
  queue: DurableQueue;
  journal: SessionJournal | undefined;
  broker: HubBroker;
  protocol: Protocol;
  workload: WorkloadApi;
  methodApi: MethodApi | undefined;
  upstream: Upstream;
  forwarder: Forwarder;
  ports: HubPorts;
  renewTimer?: NodeJS.Timeout;
}

function twinId(t: Target): string {
  return t.moduleId === undefined ? t.deviceId : `${t.deviceId}/${t.moduleId}`;
}

function subscribed(client: unknown, filter: string): boolean {
  const subs = (client as { subscriptions?: Record<string, unknown> }).subscriptions;
  return subs !== undefined && filter in subs;
}

export class Hub {
  readonly options: HubOptions;
  readonly metrics = new HubMetrics();
  readonly router = new Router();
  readonly log: Logger;
  readonly #methods = new MethodCalls();
  readonly #upstreamOverride: Upstream | undefined;
  readonly #leafListeners = new Set<() => void>();
  #r: Running | undefined;
  #edgeAgent: ((method: string, payload: unknown) => Promise<MethodResult>) | undefined;

  /** `upstream` overrides `options.upstream` (the cloud link passes itself here). */
  constructor(options: HubOptionsInput, deps: { log?: Logger; upstream?: Upstream } = {}) {
    this.options = resolveHubOptions(options);
    this.log = deps.log ?? createLogger({ name: 'kedge-hub' });
    this.#upstreamOverride = deps.upstream;
    this.router.setRoutes(routeSpecs(this.options.routes));
    const { validitySecs, renewBeforeSecs } = this.options.serverCert;
    if (renewBeforeSecs >= validitySecs)
      throw new KedgeError(
        ErrorCode.InvalidConfig,
        'hub.serverCert.renewBeforeSecs must be less than hub.serverCert.validitySecs',
      );
  }

  #running(): Running {
    if (!this.#r) throw new KedgeError(ErrorCode.Unavailable, 'hub is not running');
    return this.#r;
  }

  /** Host names the server certificate covers. */
  get hostNames(): string[] {
    const o = this.options;
    return [...new Set([o.gatewayHostName, o.containerHostName, 'localhost', ...o.extraHostNames])];
  }

  /** Creates or loads PKI, identities, twins and the queue, then starts listening. */
  async start(): Promise<void> {
    const o = this.options;
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    const pki = ensureHubPki(o.dataDir, o.deviceId, this.hostNames, o.serverCert);
    const identities = new IdentityRegistry(
      o.dataDir,
      o.deviceId,
      [o.iotHubHostName, ...this.hostNames],
      this.log,
    );
    identities.setLeafDevices(o.leafDevices);
    const twins = new TwinStore(o.dataDir);
    const queue = this.#openQueue();
    this.metrics.watchQueue(() => queue.stats());
    const journal =
      o.storeAndForward.backend === 'memory'
        ? undefined
        : new SessionJournal(path.join(o.dataDir, 'sessions.db'));
    const sessions = new SessionStore({
      journal,
      maxMessages: o.limits.maxSessionMessages,
      maxBytes: o.limits.maxSessionBytes,
      ttlSecs: () => this.options.storeAndForward.timeToLiveSecs,
      onDropped: (reason, count) => this.metrics.dropped.inc({ reason }, count),
    });
    this.metrics.watchSessions(() => sessions.stats);
    const broker = await HubBroker.create({
      identities,
      metrics: this.metrics,
      log: this.log,
      limits: o.limits,
      sessions,
    });
    const protocol = new Protocol({
      deviceId: o.deviceId,
      broker: broker.aedes,
      router: this.router,
      queue,
      twins,
      methods: this.#methods,
      metrics: this.metrics,
      log: this.log,
      limits: o.limits,
      defaultTtlSecs: () => this.options.storeAndForward.timeToLiveSecs,
      identityOf: (c) => broker.identityOf(c),
      isConnected: (id) => broker.client(id) !== undefined,
    });
    broker.attach(protocol);
    broker.onLeafPresence = () => this.#leafListeners.forEach((l) => l());
    const hosts = addressList(o.host);
    if (hosts.length === 0 && o.moduleHost === undefined)
      throw new KedgeError(
        ErrorCode.InvalidConfig,
        'hub.host: at least one listen address is needed',
      );
    const listened = await broker.listen({
      hosts,
      sdkHosts: (port) => sdkPortHosts(o.moduleHost, hosts, port, SDK_PORTS.mqtts),
      tlsPort: o.tlsPort,
      plainPort: o.plainPort,
      cert: pki.server.certPem,
      key: pki.server.keyPem,
    });
    const workload = new WorkloadApi(identities, () => pki.trustBundlePem, this.log);
    const workloadPort = await workload.listen({
      socketPath: o.workloadSocket,
      port: o.workloadPort,
      hosts: addressList(o.workloadHost),
    });
    const methodApi = o.methodsPort === null ? undefined : this.#methodApi(identities, broker);
    const methodsPort =
      (await methodApi?.listen({
        port: o.methodsPort ?? 0,
        hosts,
        sdkHosts: (port) => sdkPortHosts(o.moduleHost, hosts, port, SDK_PORTS.https),
        cert: pki.server.certPem,
        key: pki.server.keyPem,
      })) ?? null;
    const upstream = this.#upstreamOverride ?? this.#createUpstream();
    const forwarder = new Forwarder(queue, upstream, this.metrics, this.log);
    this.#r = {
      pki,
      identities,
      twins,
      queue,
      journal,
      broker,
      protocol,
      workload,
      methodApi,
      upstream,
      forwarder,
      ports: {
        tls: listened.tlsPort,
        plain: listened.plainPort,
        workload: workloadPort,
        methods: methodsPort,
      },
    };
    this.#applyModuleTwins(o.modules);
    this.#scheduleRenewal(this.#r);
    await upstream.start({
      serviceDesired: (target, layer) => this.setServiceDesired(target, layer),
      invokeMethod: (target, req) =>
        this.invokeMethod(target, req.methodName, req.payload, req.timeoutMs),
      c2d: (deviceId, body, props) => this.sendC2D(deviceId, body, props),
    });
    forwarder.start();
    this.log.info(
      { ports: this.#r.ports, routes: this.router.size, queued: queue.stats().depth },
      'hub started',
    );
    this.#warnOffSdkPorts(this.#r.ports);
  }

  /**
   * `IOTEDGE_GATEWAYHOSTNAME` is a host name only, so SDK clients dial 8883 and 443 on it. Says
   * once, at start, when the hub's own addresses listen elsewhere.
   */
  #warnOffSdkPorts(ports: HubPorts): void {
    const off = [
      ports.tls !== SDK_PORTS.mqtts ? `MQTT/TLS on ${ports.tls}` : undefined,
      ports.methods !== null && ports.methods !== SDK_PORTS.https
        ? `direct methods on ${ports.methods}`
        : undefined,
    ].filter((x) => x !== undefined);
    if (off.length === 0) return;
    const containers =
      this.options.moduleHost === undefined
        ? ''
        : ` (containers on the module network are served on ${this.options.moduleHost}:${SDK_PORTS.mqtts} and :${SDK_PORTS.https})`;
    this.log.warn(
      { host: this.options.host, tlsPort: ports.tls, methodsPort: ports.methods },
      `the hub serves ${off.join(' and ')}, but SDK clients dial ${SDK_PORTS.mqtts} (MQTT/TLS) and ${SDK_PORTS.https} (methods) on IOTEDGE_GATEWAYHOSTNAME, which carries no port: process modules and leaf devices must be given the port some other way${containers}`,
    );
  }

  /** Arms the timer that re-issues the server certificate before it expires. */
  #scheduleRenewal(r: Running, delayMs?: number): void {
    const dueInMs = renewAtMs(r.pki.server, this.options.serverCert) - Date.now();
    const waitMs = delayMs ?? Math.min(MAX_TIMER_MS, Math.max(MIN_RENEW_INTERVAL_MS, dueInMs));
    r.renewTimer = setTimeout(() => this.#renewIfDue(r), waitMs);
    r.renewTimer.unref();
  }

  /**
   * Re-issues the server certificate when due and hands it to the TLS listeners: new connections
   * get it, connected clients keep their session, nothing restarts.
   */
  #renewIfDue(r: Running): void {
    if (this.#r !== r) return;
    if (renewAtMs(r.pki.server, this.options.serverCert) > Date.now()) {
      this.#scheduleRenewal(r);
      return;
    }
    try {
      r.pki.server = issueServerCert(
        this.options.dataDir,
        r.pki.ca,
        this.hostNames,
        this.options.serverCert,
      );
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot renew the hub server certificate');
      this.#scheduleRenewal(r, RENEW_RETRY_MS);
      return;
    }
    const pair = { cert: r.pki.server.certPem, key: r.pki.server.keyPem };
    r.broker.setSecureContext(pair);
    r.methodApi?.setSecureContext(pair);
    this.metrics.serverCertRenewals.inc();
    this.log.info('hub server certificate renewed');
    this.#scheduleRenewal(r);
  }

  #methodApi(identities: IdentityRegistry, broker: HubBroker): MethodApi {
    const webSockets = this.options.mqttWebSockets
      ? new MqttWebSockets({
          admit: (socket) => broker.admitWebSocket(socket),
          handle: (stream, socket) => broker.handleWebSocket(stream, socket),
          maxMessageBytes: broker.maxPacketBytes,
          metrics: this.metrics,
          log: this.log,
        })
      : undefined;
    return new MethodApi({
      deviceId: this.options.deviceId,
      identities,
      metrics: this.metrics,
      log: this.log,
      limits: this.options.limits,
      call: (target, name, payload, timeoutMs) =>
        this.#callMethod(target, name, payload, timeoutMs),
      upgrade: webSockets && ((req, socket, head) => webSockets.upgrade(req, socket, head)),
    });
  }

  #openQueue(): DurableQueue {
    const { storeAndForward: s, dataDir } = this.options;
    const limits = { maxBytes: s.maxBytes, maxMessages: s.maxMessages, dropPolicy: s.dropPolicy };
    return s.backend === 'memory'
      ? new MemoryQueue(limits)
      : new SqliteQueue(path.join(dataDir, 'upstream-queue.db'), limits);
  }

  #createUpstream(): Upstream {
    const u = this.options.upstream;
    switch (u.type) {
      case 'stdout':
        return new StdoutUpstream();
      case 'file':
        return new FileUpstream(u.path);
      case 'mqtt':
        return new MqttUpstream(
          {
            url: u.url,
            topicPrefix: u.topicPrefix ?? `kedge/${this.options.deviceId}`,
            clientId: `kedge-hub-${this.options.deviceId}`,
            ...(u.username === undefined ? {} : { username: u.username }),
            ...(u.password === undefined ? {} : { password: u.password }),
          },
          this.log,
        );
      default:
        return new NoUpstream();
    }
  }

  /**
   * Applies a configuration change without dropping connections: routes are compiled first (a bad
   * route throws RouteSyntaxError and changes nothing), then swapped; changed module desired
   * properties are pushed to connected modules.
   */
  applyConfig(update: HubConfigUpdate): void {
    if (update.routes) {
      this.router.setRoutes(routeSpecs(update.routes));
      this.options.routes = update.routes;
    }
    if (update.timeToLiveSecs !== undefined)
      this.options.storeAndForward.timeToLiveSecs = update.timeToLiveSecs;
    if (update.leafDevices) {
      this.options.leafDevices = update.leafDevices;
      if (this.#r) this.#revoke(this.#r.identities.setLeafDevices(update.leafDevices));
    }
    if (update.modules) {
      this.options.modules = update.modules;
      if (this.#r) this.#applyModuleTwins(update.modules);
    }
  }

  /**
   * Replaces the leaf devices synced from the cloud (the EdgeDevices whose parent is this device)
   * and caches them on disk. A leaf that is gone, or whose key or thumbprint changed, is
   * disconnected at once; it must authenticate again with what it now has.
   */
  setCloudLeaves(leaves: readonly LeafIdentity[]): void {
    if (this.#r) this.#revoke(this.#r.identities.leaves.setCloud(leaves));
  }

  #revoke(ids: string[]): void {
    const dropped = this.#r?.broker.disconnect(ids) ?? [];
    if (dropped.length > 0)
      this.log.info({ leaves: dropped }, 'disconnected leaf devices whose access was revoked');
  }

  /** Leaf devices connected now. */
  connectedLeaves(): string[] {
    return this.#r?.broker.connectedLeaves() ?? [];
  }

  /** Calls `listener` whenever a leaf device connects or disconnects; returns the unsubscribe. */
  onLeafPresence(listener: () => void): () => void {
    this.#leafListeners.add(listener);
    return () => this.#leafListeners.delete(listener);
  }

  #applyModuleTwins(modules: HubOptions['modules']): void {
    for (const [moduleId, m] of Object.entries(modules)) {
      const target = { deviceId: this.options.deviceId, moduleId };
      const patch = this.#running().twins.setDesired(twinId(target), m.desiredProperties ?? {});
      if (patch) this.#pushDesired(target, patch);
    }
  }

  /**
   * Sets a twin's service-API desired layer (every patch sent through the cloud, composed) and
   * pushes what it changed to the connected client.
   */
  setServiceDesired(target: Target, layer: Record<string, unknown>): void {
    const patch = this.#running().twins.setServiceDesired(twinId(target), layer);
    if (patch) this.#pushDesired(target, patch);
  }

  #pushDesired(target: Target, versionedPatch: Record<string, unknown>): void {
    const r = this.#running();
    const client = r.broker.client(twinId(target));
    if (client && subscribed(client, DESIRED_FILTER))
      r.protocol.sendDesiredPatch(client, versionedPatch);
  }

  /** Calls a direct method on a connected module or leaf device. 404 when it is not listening. */
  async invokeMethod(
    target: Target,
    methodName: string,
    payload: unknown,
    timeoutMs?: number,
  ): Promise<MethodResult> {
    const result = this.#callMethod(
      target,
      methodName,
      payload,
      timeoutMs ?? this.options.limits.methodTimeoutSecs * 1000,
    );
    return (
      result ?? {
        status: 404,
        payload: { message: `${twinId(target)} is not connected or not listening for methods` },
      }
    );
  }

  /** Answers methods called on this device's `$edgeAgent` (from the cloud or from modules). */
  setEdgeAgentMethods(handler: (method: string, payload: unknown) => Promise<MethodResult>): void {
    this.#edgeAgent = handler;
  }

  /** Sends the request; undefined when the target is not connected or not listening. */
  #callMethod(
    target: Target,
    methodName: string,
    payload: unknown,
    timeoutMs: number,
  ): Promise<MethodResult> | undefined {
    if (
      this.#edgeAgent &&
      target.moduleId === EDGE_AGENT_MODULE_ID &&
      target.deviceId === this.options.deviceId
    )
      return this.#edgeAgent(methodName, payload);
    const r = this.#running();
    const client = r.broker.client(twinId(target));
    if (!client || !subscribed(client, METHODS_FILTER)) return undefined;
    const { requestId, result } = this.#methods.begin(client.id, timeoutMs);
    client.publish(
      {
        cmd: 'publish',
        topic: `$iothub/methods/POST/${methodName}/?$rid=${requestId}`,
        payload: Buffer.from(JSON.stringify(payload ?? null)),
        qos: 0,
        retain: false,
        dup: false,
      },
      () => undefined,
    );
    return result;
  }

  /**
   * Sends a cloud-to-device message to a leaf device (QoS1). Resolves once the leaf's session
   * holds it: delivered to a connected leaf, journaled for one that is offline. Rejects for a
   * device this hub does not know.
   */
  async sendC2D(
    deviceId: string,
    body: Buffer,
    properties: [string, string][] = [],
  ): Promise<void> {
    const r = this.#running();
    if (!r.identities.hasLeaf(deviceId))
      throw new KedgeError(ErrorCode.NotFound, `${deviceId} is not a leaf device of this hub`);
    const topic = c2dTopic(deviceId, properties);
    await new Promise<void>((resolve, reject) =>
      r.broker.aedes.publish(
        { cmd: 'publish', topic, payload: body, qos: 1, retain: false, dup: false },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }

  /** The agent seam: module identities and their IoT Edge environment. */
  get identityProvider(): ModuleIdentityProvider {
    const r = this.#running();
    return new HubModuleIdentityProvider(r.identities, () => ({
      deviceId: this.options.deviceId,
      iotHubHostName: this.options.iotHubHostName,
      containerHostName: this.options.containerHostName,
      // Process-runtime modules run on this host, where the gateway name may not resolve.
      processHostName: 'localhost',
      workloadPort: r.ports.workload,
      workloadSocket: this.options.workloadSocket,
    }));
  }

  /** Bound ports. */
  get ports(): HubPorts {
    return this.#running().ports;
  }

  /** The device CA (PEM) that modules and leaf devices must trust. */
  get trustBundlePem(): string {
    return this.#running().pki.trustBundlePem;
  }

  /** A twin document (desired and reported, with `$version`s). */
  twin(target: Target): { desired: Record<string, unknown>; reported: Record<string, unknown> } {
    return this.#running().twins.document(twinId(target));
  }

  /** Queue statistics. */
  queueStats(): ReturnType<DurableQueue['stats']> {
    return this.#running().queue.stats();
  }

  /** Stops listeners, the forwarder and the upstream; flushes and closes the queue. */
  async stop(): Promise<void> {
    const r = this.#r;
    if (!r) return;
    this.#r = undefined;
    clearTimeout(r.renewTimer);
    this.#methods.cancelAll();
    await r.forwarder.stop();
    await r.upstream.stop();
    await r.workload.close();
    await r.methodApi?.close();
    await r.broker.close();
    r.journal?.close();
    await r.queue.close();
    this.log.info('hub stopped');
  }
}
