import mqtt, { type MqttClient } from 'mqtt';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import {
  deviceResourceUri,
  deviceTopic,
  DOWNSTREAM_LEAVES,
  deviceUsername,
  Leaf,
  MAX_REPORTED_LEAVES,
  type C2dMessage,
  type DesiredMessage,
  type LeafIdentity,
  type LogRequest,
  type MethodRequest,
  type TwinDesiredMessage,
} from '../../common/cloudlink/protocol.js';
import { errorMessage } from '../../common/errors.js';
import { createSasToken } from '../../common/iothub/index.js';
import type { Logger } from '../../common/logger.js';
import type { Agent, DesiredHandler, DesiredStateSource } from '../agent/index.js';
import { reportFrom } from './report.js';
import { DeviceSessions } from './sessions.js';
import { CloudUpstream } from './upstream.js';

/** SAS tokens are minted for this long and renewed on every (re)connect. */
const TOKEN_TTL_SECS = 3600;
/** Reconnect backoff: first delay, cap, and full jitter so a fleet does not reconnect in step. */
const RECONNECT_BASE_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
/** Reports are coalesced over this window so a burst of module events sends one message. */
const REPORT_DEBOUNCE_MS = 200;
/** MQTT keepalive; the broker drops a silent link after 1.5×. */
const KEEPALIVE_SECS = 30;
/** Default heartbeat, the kubelet's lease renewal interval. */
export const DEFAULT_HEARTBEAT_SECS = 10;
/** Default usage interval: metrics-server's default resolution, so each scrape finds a new sample. */
export const DEFAULT_USAGE_SECS = 15;

/** What the link needs of the local hub for leaf devices. */
export interface LeafHost {
  /** Takes the leaf devices that arrived with the desired state. */
  setCloudLeaves(leaves: readonly LeafIdentity[]): void;
  /** Leaf devices connected now, for the report. */
  connectedLeaves(): string[];
  /** Calls `listener` whenever a leaf connects or disconnects. */
  onLeafPresence(listener: () => void): () => void;
}

/** Options for {@link CloudLink}. */
export interface CloudLinkOptions {
  /** `mqtts://host:port` of the cloud hub. */
  url: string;
  namespace: string;
  device: string;
  /** A device key (base64) to sign SAS tokens with, or an X.509 certificate and key (PEM). */
  credentials: { keyBase64: string } | { certPem: string; keyPem: string };
  /** CA certificate of the cloud hub. */
  caPem: string;
  heartbeatSecs?: number;
  /** How often usage is sampled and sent; defaults to {@link DEFAULT_USAGE_SECS}. */
  usageSecs?: number;
  log: Logger;
}

/**
 * The device end of the cloud link: one outbound TLS MQTT connection that receives desired
 * state, sends reports, heartbeats and telemetry, and serves log and method requests. It
 * reconnects with jittered backoff and resends its report after every outage.
 */
export class CloudLink implements DesiredStateSource {
  readonly #opts: CloudLinkOptions;
  readonly upstream: CloudUpstream;
  #client: MqttClient | undefined;
  #agent: Agent | undefined;
  #leafHost: LeafHost | undefined;
  #onDesired: DesiredHandler | undefined;
  #lastDesired = -1;
  #attempt = 0;
  #timers: {
    heartbeat?: NodeJS.Timeout;
    report?: NodeJS.Timeout;
    reconnect?: NodeJS.Timeout;
    usage?: NodeJS.Timeout;
  } = {};
  #logs = new Map<string, Readable>();
  readonly #sessions: DeviceSessions;
  #stopped = false;

  constructor(options: CloudLinkOptions) {
    this.#opts = options;
    this.upstream = new CloudUpstream(this.#topic.bind(this), options.log);
    this.#sessions = new DeviceSessions(
      (frame) => void this.#client?.publish(this.#topic(Leaf.streamUp), frame, { qos: 1 }),
      (open) => {
        if (!this.#agent) throw new Error('the agent is not running');
        return this.#agent.openSession(open);
      },
      options.log.child({ component: 'sessions' }),
    );
  }

  get connected(): boolean {
    return this.#client?.connected === true;
  }

  /** Lets the link report the agent's state and serve its logs. */
  attachAgent(agent: Agent): void {
    this.#agent = agent;
    agent.subscribe(() => this.#scheduleReport());
  }

  /** Hands leaf identities from the desired state to the hub, and reports its connected leaves. */
  attachLeafHost(host: LeafHost): void {
    this.#leafHost = host;
    host.onLeafPresence(() => this.#scheduleReport());
  }

  /** DesiredStateSource: desired documents arrive from the cloud. */
  async start(onDesired: DesiredHandler): Promise<void> {
    this.#onDesired = onDesired;
    this.connect();
    return Promise.resolve();
  }

  /** Dials the cloud hub; returns at once and keeps retrying in the background. */
  connect(): void {
    if (this.#client) return;
    const client = mqtt.connect(this.#opts.url, {
      clientId: deviceUsername(this.#opts.namespace, this.#opts.device),
      username: deviceUsername(this.#opts.namespace, this.#opts.device),
      ...this.#secret(),
      ca: this.#opts.caPem,
      protocolVersion: 4,
      clean: true,
      keepalive: KEEPALIVE_SECS,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    this.#client = client;
    this.upstream.bind(client);
    client.on('connect', () => void this.#onConnect());
    client.on('close', () => this.#onClose());
    client.on('error', (err) => this.#opts.log.warn({ reason: err.message }, 'cloud link error'));
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    Object.values(this.#timers).forEach((t) => clearTimeout(t));
    for (const stream of this.#logs.values()) stream.destroy();
    this.#sessions.closeAll();
    await this.#client?.endAsync();
  }

  #topic(leaf: string): string {
    return deviceTopic(this.#opts.namespace, this.#opts.device, leaf);
  }

  /** A fresh SAS token as password, or the client certificate (no password). */
  #secret(): { password: string } | { cert: string; key: string } {
    const credentials = this.#opts.credentials;
    if ('certPem' in credentials) return { cert: credentials.certPem, key: credentials.keyPem };
    return {
      password: createSasToken({
        resource: deviceResourceUri(this.#opts.namespace, this.#opts.device),
        keyBase64: credentials.keyBase64,
        expirySecs: Math.floor(Date.now() / 1000) + TOKEN_TTL_SECS,
      }),
    };
  }

  async #onConnect(): Promise<void> {
    this.#attempt = 0;
    this.#opts.log.info({ url: this.#opts.url }, 'cloud link connected');
    await this.#client!.subscribeAsync(
      DOWNSTREAM_LEAVES.map((l) => this.#topic(l)),
      { qos: 1 },
    ).catch(() => undefined);
    // The link may have closed while subscribing; the next `connect` brings it up.
    if (!this.connected) return;
    this.upstream.setLinkUp(true);
    this.#scheduleReport();
    this.#startHeartbeat();
    this.#scheduleUsage(0);
  }

  #onClose(): void {
    failUnacknowledged(this.#client!);
    // The gateway ended them with the session; their clients were told.
    this.#sessions.closeAll();
    this.upstream.setLinkUp(false);
    clearInterval(this.#timers.heartbeat);
    clearTimeout(this.#timers.usage);
    this.#timers.usage = undefined;
    if (this.#stopped) return;
    const capMs = Math.min(RECONNECT_BASE_MS * 2 ** this.#attempt, RECONNECT_MAX_MS);
    const delayMs = Math.round(capMs / 2 + (Math.random() * capMs) / 2);
    this.#attempt++;
    clearTimeout(this.#timers.reconnect);
    this.#timers.reconnect = setTimeout(() => {
      if (this.#stopped || !this.#client) return;
      // Anything published while the link was down is in the store reconnect() discards.
      failUnacknowledged(this.#client);
      Object.assign(this.#client.options, this.#secret());
      this.#client.reconnect();
    }, delayMs);
  }

  #startHeartbeat(): void {
    clearInterval(this.#timers.heartbeat);
    const everyMs = (this.#opts.heartbeatSecs ?? DEFAULT_HEARTBEAT_SECS) * 1000;
    const beat = (): void => {
      if (this.connected)
        this.#client!.publish(
          this.#topic(Leaf.heartbeat),
          JSON.stringify({ at: new Date().toISOString() }),
          { qos: 0 },
        );
    };
    beat();
    this.#timers.heartbeat = setInterval(beat, everyMs);
  }

  /** Samples usage after `delayMs`, then every interval; one sample at a time, only while up. */
  #scheduleUsage(delayMs: number): void {
    clearTimeout(this.#timers.usage);
    this.#timers.usage = setTimeout(() => {
      void this.#sendUsage().finally(() => {
        if (this.connected && !this.#stopped)
          this.#scheduleUsage((this.#opts.usageSecs ?? DEFAULT_USAGE_SECS) * 1000);
      });
    }, delayMs);
  }

  async #sendUsage(): Promise<void> {
    if (!this.connected || !this.#agent) return;
    try {
      const usage = await this.#agent.usage();
      this.#client?.publish(this.#topic(Leaf.usage), JSON.stringify(usage), { qos: 0 });
    } catch (err) {
      this.#opts.log.debug({ reason: errorMessage(err) }, 'usage sample failed');
    }
  }

  #scheduleReport(): void {
    if (this.#timers.report || !this.#agent) return;
    this.#timers.report = setTimeout(() => {
      this.#timers.report = undefined;
      if (!this.connected || !this.#agent) return;
      const report = reportFrom(this.#agent.snapshot(), hostname());
      const leaves = this.#leafHost?.connectedLeaves();
      if (leaves?.length) report.leaves = leaves.slice(0, MAX_REPORTED_LEAVES);
      this.#client!.publishAsync(this.#topic(Leaf.reported), JSON.stringify(report), {
        qos: 1,
      }).catch(() => this.#scheduleReport());
    }, REPORT_DEBOUNCE_MS);
  }

  #onMessage(topic: string, payload: Buffer): void {
    if (topic === this.#topic(Leaf.streamDown)) return this.#sessions.receive(payload);
    try {
      const body = JSON.parse(payload.toString('utf8')) as unknown;
      if (topic === this.#topic(Leaf.desired)) this.#desired(body as DesiredMessage);
      else if (topic === this.#topic(Leaf.logRequest)) void this.#serveLogs(body as LogRequest);
      else if (topic === this.#topic(Leaf.logCancel))
        this.#logs.get((body as { id: string }).id)?.destroy();
      else if (topic === this.#topic(Leaf.methodRequest)) void this.#method(body as MethodRequest);
      else if (topic === this.#topic(Leaf.c2d)) void this.#c2d(body as C2dMessage);
      else if (topic === this.#topic(Leaf.twinDesired))
        this.upstream.serviceDesired(this.#opts.device, body as TwinDesiredMessage);
    } catch (err) {
      this.#opts.log.warn({ topic, reason: errorMessage(err) }, 'bad message from the cloud hub');
    }
  }

  #desired(message: DesiredMessage): void {
    if (message.version === this.#lastDesired) return;
    this.#lastDesired = message.version;
    // Leaves first: a manifest the agent rejects must not hold back a revocation.
    try {
      this.#leafHost?.setCloudLeaves(message.leafDevices ?? []);
    } catch (err) {
      this.#opts.log.error({ reason: errorMessage(err) }, 'cannot apply the leaf device list');
    }
    this.#onDesired?.(
      { modulesContent: message.modulesContent },
      { version: String(message.version), origin: 'cloud' },
    );
    this.#scheduleReport();
  }

  async #serveLogs(request: LogRequest): Promise<void> {
    const data = this.#topic(`${Leaf.logData}/${request.id}`);
    const end = this.#topic(`${Leaf.logEnd}/${request.id}`);
    const finish = (error?: string): void => {
      this.#logs.delete(request.id);
      void this.#client
        ?.publishAsync(end, JSON.stringify(error ? { error } : {}), { qos: 1 })
        .catch(() => undefined);
    };
    try {
      if (!this.#agent) throw new Error('no agent');
      const stream = await this.#agent.logs(request.module, {
        follow: request.follow,
        timestamps: request.timestamps,
        ...(request.tailLines !== undefined ? { tail: request.tailLines } : {}),
        ...(sinceOf(request) ? { since: sinceOf(request) } : {}),
      });
      this.#logs.set(request.id, stream);
      let sent = 0;
      stream.on('data', (chunk: Buffer) => {
        const room = request.limitBytes === undefined ? chunk.length : request.limitBytes - sent;
        if (room <= 0) return void stream.destroy();
        sent += Math.min(room, chunk.length);
        this.#client?.publish(data, chunk.subarray(0, room), { qos: 1 });
      });
      stream.on('close', () => finish());
      stream.on('error', (err) => finish(err.message));
    } catch (err) {
      finish(errorMessage(err));
    }
  }

  async #method(request: MethodRequest): Promise<void> {
    const response = await this.upstream.invokeMethod(request.leaf ?? this.#opts.device, request);
    await this.#client
      ?.publishAsync(
        this.#topic(`${Leaf.methodResponse}/${request.id}`),
        JSON.stringify(response),
        { qos: 1 },
      )
      .catch(() => undefined);
  }

  /** Hands a C2D message to the hub and tells the gateway whether the hub took it. */
  async #c2d(message: C2dMessage): Promise<void> {
    const ack = await this.upstream.deliverC2D(message);
    await this.#client
      ?.publishAsync(this.#topic(`${Leaf.c2dAck}/${message.id}`), JSON.stringify(ack), { qos: 1 })
      .catch(() => undefined);
  }
}

/**
 * Fails every QoS 1 publish still waiting for its PUBACK. MQTT.js's `reconnect()` starts over with
 * an empty outgoing store, so those publishes are never sent again and their callbacks would never
 * be called: the hub's forwarder waited for its batch forever (devices whose gateway dropped them
 * mid-publish, e.g. while a NATS server died, never drained again), and `endAsync()` waited for
 * them too. Failed, they stay in the hub's queue and the forwarder sends them again once the link
 * is back; the gateway stores a re-sent message once (JetStream de-duplicates it by queue seq).
 */
function failUnacknowledged(client: MqttClient): void {
  for (const [id, pending] of Object.entries(client.outgoing)) {
    delete client.outgoing[Number(id)];
    pending.cb(new Error('the cloud link closed before the PUBACK'));
  }
}

function sinceOf(request: LogRequest): Date | undefined {
  if (request.sinceTime) return new Date(request.sinceTime);
  if (request.sinceSeconds !== undefined) return new Date(Date.now() - request.sinceSeconds * 1000);
  return undefined;
}
