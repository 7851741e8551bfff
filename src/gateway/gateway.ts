/**
 * `kedge gateway`: a stateless process that terminates device links. Devices dial it over TLS
 * MQTT with device-scoped SAS credentials; everything it is told goes to NATS JetStream before
 * the device's PUBACK, and everything a device must receive comes from NATS. Any number of
 * replicas can run behind one Service; a device reconnecting lands on any of them.
 */
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import { deviceTopic, Leaf, parseDeviceTopic } from '../common/cloudlink/protocol.js';
import { MAX_USAGE_BYTES } from '../common/cloudlink/usage.js';
import {
  Buckets,
  deviceKey,
  deviceOfSubject,
  Subjects,
  type CredentialsRecord,
  type PresenceEvent,
} from '../common/cloudplane/layout.js';
import { openBuckets } from '../common/cloudplane/nats.js';
import { watchBucket, type BucketWatch } from '../common/cloudplane/watch.js';
import { ErrorCode, KedgeError, errorMessage } from '../common/errors.js';
import { peerCertificateChain } from '../common/x509-identity.js';
import type { Logger } from '../common/logger.js';
import {
  authenticate,
  mayPublish,
  maySubscribe,
  verifyProof,
  type CloudIdentity,
  type Proof,
} from './auth.js';
import { DeviceIo } from './device-io.js';
import { GuardedTlsListener, type ListenerLimits } from './listener.js';
import { GatewayMetrics } from './metrics.js';
import { guardPacketSize } from '../common/mqtt/packet-guard.js';
import { SessionRequests } from './requests.js';
import { SessionC2d } from './c2d.js';
import { desiredTwinMessages, deviceKeyOfTwin, twinDesiredMessage } from './desired-twins.js';

/** aedes CONNACK return code for bad credentials. */
const BAD_USERNAME_OR_PASSWORD = 4;
/** A CONNECT with a SAS token fits easily; nothing larger is parsed before authentication. */
const MAX_PRE_AUTH_PACKET_BYTES = 4 * 1024;
/** Devices send telemetry in batches of at most 1 MiB; this leaves room for topic and header. */
export const MAX_PACKET_BYTES = 2 * 1024 * 1024;
/** Client ids are `<namespace>/<device>`: a DNS label, a slash and a DNS subdomain. */
const MAX_CLIENT_ID_LENGTH = 63 + 1 + 253;
/** From TLS established to an MQTT CONNECT, at most. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Retry delays for sending desired state while JetStream is failing over. */
const PUSH_RETRY_MS = 500;
const PUSH_RETRY_MAX_MS = 5_000;
/**
 * The longest session: an X.509 device's certificate may be valid for years, and a timer longer
 * than 2^31 - 1 ms fires at once. A day is the longest it goes without authenticating again.
 */
const MAX_SESSION_MS = 24 * 3600 * 1000;
/** A device that does not read its deliveries for this long is dropped. */
const DRAIN_TIMEOUT_MS = 10_000;

/** Default limits: thousands of devices per replica, a handful of unauthenticated sockets each. */
export const DEFAULT_LIMITS: ListenerLimits = {
  maxConnections: 10_000,
  maxPreAuthPerSource: 32,
  handshakeTimeoutMs: 10_000,
};

/** Options of {@link Gateway.start}. */
export interface GatewayOptions {
  nc: NatsConnection;
  port: number;
  /** Defaults to 0.0.0.0. */
  host?: string;
  tls: { certPem: string; keyPem: string };
  limits?: Partial<ListenerLimits>;
  log: Logger;
}

interface Session {
  client: Client;
  who: CloudIdentity;
  id: string;
  proof: Proof;
  requests: SessionRequests;
  c2d: SessionC2d;
  expiry: NodeJS.Timeout;
}

export class Gateway {
  readonly id = randomUUID();
  readonly metrics = new GatewayMetrics();
  readonly #aedes: Aedes;
  readonly #listener: GuardedTlsListener;
  readonly #opts: GatewayOptions;
  readonly #io: DeviceIo;
  readonly #buckets: Record<keyof typeof Buckets, KV>;
  readonly #jsm: JetStreamManager;
  readonly #credentials = new Map<string, CredentialsRecord>();
  readonly #pending = new WeakMap<Client, { who: CloudIdentity; proof: Proof }>();
  /** Clients not yet authenticated, with what frees their source's pre-auth slot. */
  readonly #unauthenticated = new WeakMap<Client, () => void>();
  readonly #sessions = new Map<string, Session>();
  readonly #subs: Subscription[] = [];
  readonly #watchers: BucketWatch[] = [];
  port = 0;

  private constructor(
    aedes: Aedes,
    buckets: Record<keyof typeof Buckets, KV>,
    jsm: JetStreamManager,
    opts: GatewayOptions,
  ) {
    this.#aedes = aedes;
    this.#buckets = buckets;
    this.#jsm = jsm;
    this.metrics.info.set({ id: this.id }, 1);
    this.#opts = opts;
    this.#io = new DeviceIo(jetstream(opts.nc), buckets, this.metrics, opts.log);
    this.#listener = new GuardedTlsListener(
      { ...DEFAULT_LIMITS, ...opts.limits },
      opts.tls,
      (accepted) => {
        const client = aedes.handle(accepted.socket);
        this.#unauthenticated.set(client, () => accepted.authenticated());
        guardPacketSize(
          client,
          () => (this.#unauthenticated.has(client) ? MAX_PRE_AUTH_PACKET_BYTES : MAX_PACKET_BYTES),
          () => this.metrics.denied.inc({ what: 'packet_too_large' }),
        );
      },
      (reason) => this.metrics.refused.inc({ reason }),
    );
    this.#hook();
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const aedes = await Aedes.createBroker({
      concurrency: 1000,
      connectTimeout: CONNECT_TIMEOUT_MS,
      drainTimeout: DRAIN_TIMEOUT_MS,
      maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
    });
    const buckets = await openBuckets(opts.nc);
    const gateway = new Gateway(aedes, buckets, await jetstreamManager(opts.nc), opts);
    gateway.#watch();
    gateway.port = await gateway.#listener.listen(opts.port, opts.host ?? '0.0.0.0');
    opts.log.info({ port: gateway.port, id: gateway.id }, 'kedge gateway listening');
    return gateway;
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  /** Serves a renewed certificate to new connections. */
  setCertificate(tls: { certPem: string; keyPem: string }): void {
    this.#listener.setCredentials(tls);
  }

  async close(): Promise<void> {
    this.#subs.forEach((s) => s.unsubscribe());
    this.#watchers.forEach((w) => w.stop());
    for (const session of this.#sessions.values()) {
      session.requests.stop();
      session.c2d.stop();
    }
    await new Promise<void>((resolve) => this.#aedes.close(() => resolve()));
    await this.#listener.close();
  }

  #watch(): void {
    const { nc, log } = this.#opts;
    const credentials = (e: KvEntry): void => {
      if (e.operation === 'PUT') this.#credentials.set(e.key, e.json<CredentialsRecord>());
      else this.#credentials.delete(e.key);
      this.#recheck(e.key);
    };
    const desired = (e: KvEntry): void => {
      const session = this.#sessions.get(e.key);
      if (session && e.operation === 'PUT')
        void this.#push(session.who, Leaf.desired, e.value).catch(() => undefined);
    };
    const desiredTwin = (e: KvEntry): void => {
      const session = this.#sessions.get(deviceKeyOfTwin(e.key));
      if (session && e.operation === 'PUT')
        void this.#push(session.who, Leaf.twinDesired, twinDesiredMessage(e)).catch(
          () => undefined,
        );
    };
    this.#watchers.push(
      watchBucket(nc, this.#buckets.credentials, {
        include: KvWatchInclude.LastValue,
        onEntry: credentials,
        log,
      }),
      watchBucket(nc, this.#buckets.desired, {
        include: KvWatchInclude.UpdatesOnly,
        onEntry: desired,
        log,
      }),
      watchBucket(nc, this.#buckets.desiredTwins, {
        include: KvWatchInclude.UpdatesOnly,
        onEntry: desiredTwin,
        log,
      }),
    );
    this.#subs.push(
      // A C2D message stored in the stream is published on its subject too: the cue for the
      // session holding its device to read the stream. One subscription serves every session.
      this.#opts.nc.subscribe(Subjects.c2dAll, {
        callback: (err, msg) => {
          const target = err ? undefined : deviceOfSubject(msg.subject, 2);
          if (target) this.#sessions.get(deviceKey(target.namespace, target.device))?.c2d.kick();
        },
      }),
      this.#opts.nc.subscribe(Subjects.disconnectAll, {
        callback: (err, msg) => {
          if (err) return;
          const target = deviceOfSubject(msg.subject, 3);
          const except = msg.data.length ? msg.json<{ except?: string }>().except : undefined;
          const session = target && this.#sessions.get(deviceKey(target.namespace, target.device));
          if (session && session.id !== except) session.client.close();
        },
      }),
    );
  }

  /** Credentials changed: a live session whose token or certificate no longer verifies is dropped. */
  #recheck(key: string): void {
    const session = this.#sessions.get(key);
    if (!session) return;
    try {
      verifyProof(session.who, session.proof, this.#credentials.get(key));
    } catch (err) {
      this.#opts.log.info(
        { device: key, reason: errorMessage(err) },
        'credentials revoked; dropping session',
      );
      session.client.close();
    }
  }

  async #credentialsOf(namespace: string, device: string): Promise<CredentialsRecord | undefined> {
    const key = deviceKey(namespace, device);
    const cached = this.#credentials.get(key);
    if (cached) return cached;
    // The watch may not have delivered a device created a moment ago; ask the bucket once.
    const entry = await this.#buckets.credentials.get(key);
    return entry?.operation === 'PUT' ? entry.json<CredentialsRecord>() : undefined;
  }

  #hook(): void {
    const a = this.#aedes;
    a.authenticate = (client, username, password, done) => {
      const parsed = username ? parseUser(username) : undefined;
      void (async () => {
        const record = parsed
          ? await this.#credentialsOf(parsed.namespace, parsed.device)
          : undefined;
        const proof = proofOf(client, password);
        const who = authenticate(username, proof, () => record);
        if (client.id !== username)
          throw new KedgeError(ErrorCode.Unauthorized, 'client id must equal the username');
        this.#pending.set(client, { who, proof: proof! });
      })().then(
        () => done(null, true),
        (err: unknown) => {
          this.metrics.denied.inc({ what: 'connect' });
          this.#opts.log.warn(
            { username, reason: errorMessage(err) },
            'gateway refused a connection',
          );
          const error = new Error(errorMessage(err)) as AuthenticateError;
          error.returnCode = BAD_USERNAME_OR_PASSWORD;
          done(error, false);
        },
      );
    };
    a.authorizePublish = (client, packet, done) => {
      const session = client ? this.#sessionOf(client) : undefined;
      if (!session || packet.retain || !mayPublish(session.who, packet.topic)) {
        this.metrics.denied.inc({ what: 'publish' });
        return done(new Error(`not authorized to publish to ${packet.topic}`));
      }
      this.#accept(session, packet.topic, packet.payload as Buffer).then(
        () => done(null),
        (err: unknown) => {
          this.#opts.log.warn(
            { device: client!.id, topic: packet.topic, reason: errorMessage(err) },
            'could not store a device message; the device will resend it',
          );
          done(err as Error);
        },
      );
    };
    a.authorizeSubscribe = (client, sub, done) => {
      const session = this.#sessionOf(client);
      if (!session || !maySubscribe(session.who, sub.topic)) {
        this.metrics.denied.inc({ what: 'subscribe' });
        return done(null, null);
      }
      done(null, sub);
    };
    a.on('clientReady', (client) => this.#onReady(client));
    a.on('clientDisconnect', (client) => this.#onGone(client));
    a.on('subscribe', (subs, client) => {
      const session = this.#sessionOf(client);
      if (session && subs.some((s) => s.topic.endsWith(`/${Leaf.desired}`)))
        void this.#pushDesired(session);
      if (session && subs.some((s) => s.topic.endsWith(`/${Leaf.twinDesired}`)))
        void this.#pushDesiredTwins(session);
      if (session && subs.some((s) => s.topic.endsWith(`/${Leaf.c2d}`))) session.c2d.start();
    });
  }

  #onReady(client: Client): void {
    if (this.#current(client)) return;
    const pending = this.#pending.get(client);
    if (!pending) return client.close();
    this.#pending.delete(client);
    const { who, proof } = pending;
    const key = deviceKey(who.namespace, who.device);
    const previous = this.#sessions.get(key);
    previous?.requests.stop();
    previous?.c2d.stop();
    const toDevice = (leaf: string, body: unknown): Promise<void> =>
      this.#push(who, leaf, Buffer.isBuffer(body) ? body : JSON.stringify(body));
    const { nc, log } = this.#opts;
    const session: Session = {
      client,
      who,
      proof,
      id: randomUUID(),
      requests: new SessionRequests(nc, who, toDevice, log),
      c2d: new SessionC2d({ jsm: this.#jsm, who, toDevice, metrics: this.metrics, log }),
      // A session lasts as long as its token (or certificate); the device reconnects with a
      // fresh one.
      expiry: setTimeout(() => client.close(), sessionLifetimeMs(who.expirySecs)),
    };
    this.#sessions.set(key, session);
    this.metrics.sessions.set(this.#sessions.size);
    session.requests.start();
    this.#unauthenticated.get(client)?.();
    this.#unauthenticated.delete(client);
    this.#opts.nc.publish(
      Subjects.disconnect(who.namespace, who.device),
      JSON.stringify({ except: session.id }),
    );
    this.#presence(session, 'connected');
  }

  #onGone(client: Client): void {
    const key = this.#keyOfClient(client);
    const session = key ? this.#sessions.get(key) : undefined;
    if (!session || session.client !== client) return;
    this.#sessions.delete(key!);
    this.metrics.sessions.set(this.#sessions.size);
    clearTimeout(session.expiry);
    session.requests.stop();
    session.c2d.stop();
    this.#presence(session, 'disconnected');
  }

  /** The live session of a client (not of an older connection with the same id). */
  #sessionOf(client: Client): Session | undefined {
    // A reconnecting device replays its unacknowledged publishes right after CONNACK, which can
    // come before aedes' `clientReady`: an authenticated client gets its session at once.
    if (!this.#current(client) && this.#pending.has(client)) this.#onReady(client);
    return this.#current(client);
  }

  #current(client: Client): Session | undefined {
    const key = this.#keyOfClient(client);
    const session = key ? this.#sessions.get(key) : undefined;
    return session?.client === client ? session : undefined;
  }

  #keyOfClient(client: Client): string | undefined {
    const parsed = client.id ? parseUser(client.id) : undefined;
    return parsed && deviceKey(parsed.namespace, parsed.device);
  }

  async #accept(session: Session, topic: string, payload: Buffer): Promise<void> {
    const leaf = parseDeviceTopic(topic)?.leaf ?? '';
    const who = session.who;
    switch (leaf) {
      case Leaf.telemetry:
        return this.#io.storeTelemetry(who, payload);
      case Leaf.reported:
        return this.#io.storeReport(who, payload);
      case Leaf.twinReported:
        return this.#io.mergeReportedTwin(who, payload);
      case Leaf.heartbeat:
        return this.#presence(session, 'heartbeat');
      case Leaf.usage:
        return this.#forwardUsage(who, payload);
      default:
        if (leaf.startsWith(`${Leaf.c2dAck}/`)) {
          session.c2d.acknowledged(leaf.slice(Leaf.c2dAck.length + 1), payload);
          return;
        }
        if (!session.requests.fromDevice(leaf, payload))
          this.#opts.log.debug({ topic }, 'unknown leaf from device');
    }
  }

  /** Passes a usage sample on unread (the controller validates it); an oversized one is dropped. */
  #forwardUsage(who: CloudIdentity, payload: Buffer): void {
    if (payload.length > MAX_USAGE_BYTES) {
      this.metrics.usageDropped.inc();
      this.#opts.log.debug(
        { device: deviceKey(who.namespace, who.device), bytes: payload.length },
        'usage sample over the size limit dropped',
      );
      return;
    }
    this.#opts.nc.publish(Subjects.usage(who.namespace, who.device), payload);
  }

  #presence(session: Session, event: PresenceEvent['event']): void {
    const body: PresenceEvent = {
      event,
      gateway: this.id,
      session: session.id,
      at: new Date().toISOString(),
    };
    this.#opts.nc.publish(
      Subjects.presence(session.who.namespace, session.who.device),
      JSON.stringify(body),
    );
  }

  /**
   * Sends the device its desired state, retrying while JetStream cannot answer (a NATS server
   * failing over) for as long as this session lasts: it is the device's only copy until the
   * next change.
   */
  async #pushDesired(session: Session): Promise<void> {
    const key = deviceKey(session.who.namespace, session.who.device);
    for (let attempt = 0; this.#sessions.get(key) === session; attempt++) {
      try {
        const entry = await this.#buckets.desired.get(key);
        if (entry?.operation === 'PUT') await this.#push(session.who, Leaf.desired, entry.value);
        return;
      } catch (err) {
        this.#opts.log.info(
          { device: key, reason: errorMessage(err) },
          'desired state read failed; retrying',
        );
        await new Promise((r) =>
          setTimeout(r, Math.min(PUSH_RETRY_MS * 2 ** attempt, PUSH_RETRY_MAX_MS)),
        );
      }
    }
  }

  /** Sends the device every twin's desired layer; a failure waits for its next connect. */
  async #pushDesiredTwins(session: Session): Promise<void> {
    const { namespace, device } = session.who;
    try {
      const messages = await desiredTwinMessages(this.#buckets.desiredTwins, namespace, device);
      for (const m of messages) await this.#push(session.who, Leaf.twinDesired, m);
    } catch (err) {
      this.#opts.log.info(
        { device: deviceKey(namespace, device), reason: errorMessage(err) },
        'could not send the desired twin patches; they go on the next connect',
      );
    }
  }

  async #push(who: CloudIdentity, leaf: string, payload: Uint8Array | string): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.#aedes.publish(
        {
          cmd: 'publish',
          topic: deviceTopic(who.namespace, who.device, leaf),
          payload: Buffer.from(payload),
          qos: 1,
          retain: false,
          dup: false,
        },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
}

function parseUser(username: string): { namespace: string; device: string } | undefined {
  const [namespace, device, ...rest] = username.split('/');
  return namespace && device && rest.length === 0 ? { namespace, device } : undefined;
}

/**
 * How long a session may last: until its token or certificate expires, and at most
 * {@link MAX_SESSION_MS}, past which a timer would fire at once.
 */
function sessionLifetimeMs(expirySecs: number): number {
  return Math.min(MAX_SESSION_MS, Math.max(0, expirySecs * 1000 - Date.now()));
}

/** A SAS token password, or else the client certificate chain the TLS handshake carried. */
function proofOf(client: Client, password: Buffer | undefined): Proof | undefined {
  if (password?.length) return { token: password.toString('utf8') };
  const conn = client.conn as unknown;
  const chain = conn instanceof TLSSocket ? peerCertificateChain(conn) : [];
  return chain.length ? { chain } : undefined;
}
