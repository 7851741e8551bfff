import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import tls from 'node:tls';
import {
  deviceTopic,
  Leaf,
  parseDeviceTopic,
  telemetryConsumerTopic,
  type DesiredMessage,
  type LogRequest,
  type MethodResponse,
  type ReportedMessage,
  type TelemetryMessage,
} from '../../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import {
  authenticate,
  mayPublish,
  maySubscribe,
  type CloudIdentity,
  type DeviceKeyLookup,
  type TelemetryConsumer,
} from './auth.js';
import { WebhookSink } from './webhook.js';

/** aedes CONNACK return code for bad credentials. */
const BAD_USERNAME_OR_PASSWORD = 4;
/** Largest payload a device may publish; a batch of 256 KiB messages fits a few. */
const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;

/** Options for {@link CloudHub.start}. */
export interface CloudHubOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Defaults to 0.0.0.0. */
  host?: string;
  tls: { certPem: string; keyPem: string };
  keys: DeviceKeyLookup;
  consumers?: TelemetryConsumer[];
  /** URLs that receive every telemetry batch as a JSON POST. */
  webhooks?: string[];
  log: Logger;
}

/** Events a {@link CloudHub} emits, with the device they concern. */
export interface CloudHubEvents {
  connected: [namespace: string, device: string];
  disconnected: [namespace: string, device: string];
  heartbeat: [namespace: string, device: string];
  reported: [namespace: string, device: string, report: ReportedMessage];
  telemetry: [namespace: string, device: string, message: TelemetryMessage];
  denied: [who: string, what: string];
}

type Pending = {
  resolve: (r: MethodResponse) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
};

/**
 * The TLS MQTT endpoint devices dial out to. It authenticates devices by SAS token, confines each
 * to its own topics, pushes desired state (again on every subscribe), and relays reports,
 * telemetry, logs and direct-method calls.
 */
export class CloudHub extends EventEmitter<CloudHubEvents> {
  readonly #aedes: Aedes;
  readonly #server: tls.Server;
  readonly #opts: CloudHubOptions;
  readonly #identities = new WeakMap<Client, CloudIdentity>();
  readonly #clients = new Map<string, Client>();
  readonly #desired = new Map<string, DesiredMessage>();
  readonly #logs = new Map<string, PassThrough>();
  readonly #methods = new Map<string, Pending>();
  readonly #sockets = new Set<tls.TLSSocket>();
  readonly webhooks: WebhookSink;
  port = 0;

  private constructor(aedes: Aedes, opts: CloudHubOptions) {
    super();
    this.#aedes = aedes;
    this.#opts = opts;
    this.webhooks = new WebhookSink(opts.webhooks ?? [], opts.log);
    this.#server = tls.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, (socket) => {
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      aedes.handle(socket);
    });
    this.#hook();
  }

  static async start(opts: CloudHubOptions): Promise<CloudHub> {
    const aedes = await Aedes.createBroker({ concurrency: 1000 });
    const hub = new CloudHub(aedes, opts);
    await new Promise<void>((resolve, reject) => {
      hub.#server.once('error', reject);
      hub.#server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
    });
    const address = hub.#server.address();
    hub.port = typeof address === 'object' && address ? address.port : opts.port;
    return hub;
  }

  get connectedDevices(): number {
    return this.#clients.size;
  }

  isConnected(namespace: string, device: string): boolean {
    return this.#clients.has(`${namespace}/${device}`);
  }

  /**
   * Records and pushes desired state; it is resent whenever the device subscribes again. A
   * version the device already has is not sent again: reconciles repeat it often, and each copy
   * is the whole manifest.
   */
  async publishDesired(namespace: string, device: string, desired: DesiredMessage): Promise<void> {
    const key = `${namespace}/${device}`;
    const previous = this.#desired.get(key);
    this.#desired.set(key, desired);
    if (previous?.version === desired.version) return;
    if (this.isConnected(namespace, device))
      await this.#publish(deviceTopic(namespace, device, Leaf.desired), desired);
  }

  forgetDevice(namespace: string, device: string): void {
    this.#desired.delete(`${namespace}/${device}`);
    this.disconnect(namespace, device);
  }

  /** Drops a device's connection (credentials revoked or device deleted). */
  disconnect(namespace: string, device: string): void {
    this.#clients.get(`${namespace}/${device}`)?.close();
  }

  /** Streams a module's log from the device; destroying the stream cancels the request. */
  streamLogs(namespace: string, device: string, request: Omit<LogRequest, 'id'>): Readable {
    if (!this.isConnected(namespace, device)) throw notConnected(namespace, device);
    const id = randomUUID();
    const stream = new PassThrough();
    this.#logs.set(id, stream);
    stream.on('close', () => {
      if (this.#logs.delete(id))
        void this.#publish(deviceTopic(namespace, device, Leaf.logCancel), { id }).catch(
          () => undefined,
        );
    });
    void this.#publish(deviceTopic(namespace, device, Leaf.logRequest), { ...request, id }).catch(
      (err: unknown) => stream.destroy(err as Error),
    );
    return stream;
  }

  /** Calls a direct method on a module; rejects with a timeout error after `timeoutSecs`. */
  async invokeMethod(
    namespace: string,
    device: string,
    call: { module: string; method: string; payload: unknown; timeoutSecs: number },
  ): Promise<MethodResponse> {
    if (!this.isConnected(namespace, device)) throw notConnected(namespace, device);
    const id = randomUUID();
    const result = new Promise<MethodResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#methods.delete(id);
        reject(
          new KedgeError(
            ErrorCode.Timeout,
            `method ${call.method} on ${namespace}/${device}/${call.module} timed out after ${call.timeoutSecs} s`,
          ),
        );
      }, call.timeoutSecs * 1000);
      this.#methods.set(id, { resolve, reject, timer });
    });
    await this.#publish(deviceTopic(namespace, device, Leaf.methodRequest), { ...call, id });
    return result;
  }

  /** Stops listening and drops every connection, consumers included. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await new Promise<void>((resolve) => this.#aedes.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #hook(): void {
    const a = this.#aedes;
    a.authenticate = (client, username, password, done) => {
      try {
        const identity = authenticate(
          username,
          password,
          this.#opts.keys,
          this.#opts.consumers ?? [],
        );
        if (identity.kind === 'device' && client.id !== username)
          throw new KedgeError(ErrorCode.Unauthorized, 'client id must equal the username');
        this.#identities.set(client, identity);
        done(null, true);
      } catch (err) {
        this.emit('denied', username ?? '(anonymous)', `connect: ${errorMessage(err)}`);
        this.#opts.log.warn(
          { username, reason: errorMessage(err) },
          'cloud hub refused a connection',
        );
        const error = new Error(errorMessage(err)) as AuthenticateError;
        error.returnCode = BAD_USERNAME_OR_PASSWORD;
        done(error, false);
      }
    };
    a.authorizePublish = (client, packet, done) => {
      const identity = client ? this.#identities.get(client) : undefined;
      if (
        !identity ||
        !mayPublish(identity, packet.topic) ||
        packet.payload.length > MAX_PAYLOAD_BYTES
      ) {
        this.emit('denied', client?.id ?? '?', `publish ${packet.topic}`);
        return done(new Error(`not authorized to publish to ${packet.topic}`));
      }
      done(null);
    };
    a.authorizeSubscribe = (client, sub, done) => {
      const identity = this.#identities.get(client);
      if (!identity || !maySubscribe(identity, sub.topic)) {
        this.emit('denied', client.id, `subscribe ${sub.topic}`);
        return done(null, null);
      }
      done(null, sub);
    };
    a.on('clientReady', (client) => this.#onConnect(client));
    a.on('clientDisconnect', (client) => this.#onDisconnect(client));
    a.on('subscribe', (subs, client) =>
      this.#onSubscribe(
        subs.map((s) => s.topic),
        client,
      ),
    );
    a.on('publish', (packet, client) => {
      if (client) this.#onDevicePublish(packet.topic, packet.payload as Buffer);
    });
  }

  #onConnect(client: Client): void {
    const identity = this.#identities.get(client);
    if (identity?.kind !== 'device') return;
    this.#clients.set(client.id, client);
    this.emit('connected', identity.namespace, identity.device);
  }

  #onDisconnect(client: Client): void {
    const identity = this.#identities.get(client);
    if (identity?.kind !== 'device' || this.#clients.get(client.id) !== client) return;
    this.#clients.delete(client.id);
    this.emit('disconnected', identity.namespace, identity.device);
  }

  #onSubscribe(topics: string[], client: Client): void {
    const identity = this.#identities.get(client);
    if (identity?.kind !== 'device') return;
    const desiredTopic = deviceTopic(identity.namespace, identity.device, Leaf.desired);
    const desired = this.#desired.get(client.id);
    if (desired && topics.includes(desiredTopic))
      void this.#publish(desiredTopic, desired).catch(() => undefined);
  }

  #onDevicePublish(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    if (!parsed) return;
    const { namespace, device, leaf } = parsed;
    try {
      this.#dispatch(namespace, device, leaf, payload);
    } catch (err) {
      this.#opts.log.warn(
        { namespace, device, leaf, reason: errorMessage(err) },
        'bad message from device',
      );
    }
  }

  #dispatch(namespace: string, device: string, leaf: string, payload: Buffer): void {
    if (leaf === Leaf.heartbeat) this.emit('heartbeat', namespace, device);
    else if (leaf === Leaf.reported)
      this.emit(
        'reported',
        namespace,
        device,
        JSON.parse(payload.toString('utf8')) as ReportedMessage,
      );
    else if (leaf === Leaf.telemetry)
      this.#onTelemetry(
        namespace,
        device,
        JSON.parse(payload.toString('utf8')) as TelemetryMessage,
      );
    else if (leaf.startsWith(`${Leaf.logData}/`))
      this.#logs.get(leaf.slice(Leaf.logData.length + 1))?.write(payload);
    else if (leaf.startsWith(`${Leaf.logEnd}/`))
      this.#endLogs(leaf.slice(Leaf.logEnd.length + 1), payload);
    else if (leaf.startsWith(`${Leaf.methodResponse}/`))
      this.#methodResponse(leaf.slice(Leaf.methodResponse.length + 1), payload);
  }

  #onTelemetry(namespace: string, device: string, message: TelemetryMessage): void {
    this.emit('telemetry', namespace, device, message);
    for (const m of message.messages)
      void this.#publish(telemetryConsumerTopic(namespace, device), m).catch(() => undefined);
    this.webhooks.enqueue({ namespace, device, messages: message.messages });
  }

  #endLogs(id: string, payload: Buffer): void {
    const stream = this.#logs.get(id);
    if (!stream) return;
    this.#logs.delete(id);
    const end = payload.length ? (JSON.parse(payload.toString('utf8')) as { error?: string }) : {};
    if (end.error) stream.destroy(new KedgeError(ErrorCode.NotFound, end.error));
    else stream.end();
  }

  #methodResponse(id: string, payload: Buffer): void {
    const pending = this.#methods.get(id);
    if (!pending) return;
    this.#methods.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(JSON.parse(payload.toString('utf8')) as MethodResponse);
  }

  async #publish(topic: string, body: unknown): Promise<void> {
    const payload = Buffer.from(JSON.stringify(body));
    await new Promise<void>((resolve, reject) =>
      this.#aedes.publish(
        { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
}

function notConnected(namespace: string, device: string): KedgeError {
  return new KedgeError(ErrorCode.Unavailable, `device ${namespace}/${device} is not connected`);
}
