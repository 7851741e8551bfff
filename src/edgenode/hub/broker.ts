/**
 * The MQTT side of the hub: aedes with kedge's authentication and ACL hooks, TLS (and optionally
 * plain) listeners with TCP_NODELAY, a packet-size guard in front of the parser, and a sweep that
 * disconnects clients whose unsent backlog exceeds the per-client bound.
 */
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { peerCertificateChain } from '../../common/x509-identity.js';
import { isKedgeError } from '../../common/errors.js';
import { skipMqttNumberCache } from '../../common/mqtt/number-cache.js';
import { guardPacketSize } from '../../common/mqtt/packet-guard.js';
import { allowedSubscriptions } from '../../common/iothub/index.js';
import type { Logger } from '../../common/logger.js';
import type { Identity, IdentityRegistry } from './identities.js';
import type { HubMetrics } from './metrics.js';
import { listenOn } from './listen.js';
import { SDK_PORTS } from './options.js';
import type { HubLimits } from './options.js';
import { PreAuthGuard } from './preauth-guard.js';
import type { Protocol } from './protocol.js';
import type { SessionStore } from './sessions/session-store.js';

/** How long after the pre-auth deadline Node's own TLS handshake timeout fires. */
const HANDSHAKE_BACKSTOP_MS = 1_000;

/** aedes CONNACK codes (its const enum is not importable at runtime). */
const BAD_USERNAME_OR_PASSWORD = 4;
/** TLS 1.0 and 1.1 are deprecated (RFC 8996); the Azure IoT SDKs speak 1.2. */
const TLS_MIN_VERSION = 'TLSv1.2';
/** How often the backlog sweep runs. */
const BACKLOG_SWEEP_MS = 500;
/**
 * A client whose socket has not drained for this long is dropped: aedes waits for `drain` before
 * writing more to a client, and deliveries to other clients queue behind that wait.
 */
const MAX_STALL_MS = 2_000;
/** Topic, properties and header around a maximum-size body. */
const PACKET_OVERHEAD_BYTES = 8 * 1024;
/** Client ids are `device/module`; IoT Hub allows 128 characters for each part. */
const MAX_CLIENT_ID_LENGTH = 257;

/** Options for {@link HubBroker}. */
export interface HubBrokerDeps {
  identities: IdentityRegistry;
  metrics: HubMetrics;
  log: Logger;
  limits: HubLimits;
  /** Subscriptions and queued messages of clean:false clients. */
  sessions: SessionStore;
}

export class HubBroker {
  readonly aedes: Aedes;
  readonly #d: HubBrokerDeps;
  readonly #clients = new Map<string, Client>();
  readonly #identities = new WeakMap<Client, Identity>();
  readonly #counted = new WeakSet<Client>();
  readonly #stalledSince = new WeakMap<Client, number>();
  /** The TLS socket under a WebSocket stream, which the pre-auth guard tracks. */
  readonly #socketOf = new WeakMap<object, net.Socket>();
  readonly #guard: PreAuthGuard;
  #protocol: Protocol | undefined;
  #servers: net.Server[] = [];
  #tlsServers: tls.Server[] = [];
  #sweep: NodeJS.Timeout | undefined;
  /** Called when a leaf device connects or disconnects. */
  onLeafPresence: (() => void) | undefined;

  private constructor(aedes: Aedes, deps: HubBrokerDeps) {
    this.aedes = aedes;
    this.#d = deps;
    this.#guard = new PreAuthGuard({
      deadlineMs: deps.limits.connectTimeoutMs,
      maxPerSource: deps.limits.maxPendingPerSource,
      onRefused: (reason, source) => {
        deps.metrics.refused.inc({ listener: 'mqtt', reason });
        deps.log.debug({ source, reason }, 'connection closed before authentication');
      },
    });
  }

  /** Creates the broker; `attach` must be called with the protocol before listening. */
  static async create(deps: HubBrokerDeps): Promise<HubBroker> {
    skipMqttNumberCache();
    const aedes = await Aedes.createBroker({
      connectTimeout: deps.limits.connectTimeoutMs,
      maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
      drainTimeout: deps.limits.connectTimeoutMs,
      concurrency: 1000,
      persistence: deps.sessions,
    });
    const broker = new HubBroker(aedes, deps);
    broker.#hook();
    return broker;
  }

  attach(protocol: Protocol): void {
    this.#protocol = protocol;
  }

  /** The identity of a connected client. */
  identityOf(client: Client): Identity | undefined {
    return this.#identities.get(client);
  }

  /** The connected client for an identity id (`d` or `d/m`). */
  client(id: string): Client | undefined {
    return this.#clients.get(id);
  }

  #hook(): void {
    const { aedes } = this;
    aedes.authenticate = (client, username, password, done) => {
      try {
        const identity = this.#authenticate(client, username ?? '', password);
        this.#identities.set(client, identity);
        this.#guard.passed(this.#socketOf.get(client.conn) ?? (client.conn as net.Socket));
        done(null, true);
      } catch (err) {
        const reason = isKedgeError(err) ? err.message : 'error';
        this.#d.metrics.authFailures.inc({ reason });
        this.#d.log.warn({ client: client.id, reason }, 'connection refused');
        const e = new Error(reason) as AuthenticateError;
        e.returnCode = BAD_USERNAME_OR_PASSWORD;
        done(e, false);
      }
    };
    aedes.authorizePublish = (client, packet, done) => {
      if (!this.#protocol) return done(new Error('hub not ready'));
      this.#protocol.authorizePublish(client, packet, done);
    };
    aedes.authorizeSubscribe = (client, sub, done) => {
      const identity = this.#identities.get(client);
      if (
        identity &&
        allowedSubscriptions(identity.deviceId, identity.moduleId).includes(sub.topic)
      ) {
        done(null, sub);
        return;
      }
      this.#d.metrics.aclDenials.inc({ action: 'subscribe' });
      this.#d.log.warn({ client: client.id, topic: sub.topic }, 'subscription refused');
      done(null, null); // SUBACK failure (0x80); the connection stays up
    };
    aedes.on('clientReady', (client) => {
      this.#clients.set(client.id, client);
      this.#counted.add(client);
      this.#d.metrics.connections.inc();
      this.#d.metrics.connectionsTotal.inc();
      if (this.#identities.get(client)?.kind === 'leaf') this.onLeafPresence?.();
    });
    aedes.on('clientDisconnect', (client) => {
      if (this.#clients.get(client.id) === client) this.#clients.delete(client.id);
      if (this.#counted.delete(client)) this.#d.metrics.connections.dec();
      if (!client.clean) this.#d.sessions.keep(client.id);
      if (this.#identities.get(client)?.kind === 'leaf') this.onLeafPresence?.();
    });
    aedes.on('clientError', (client, err) => {
      this.#d.log.debug({ client: client.id, err: err.message }, 'client error');
    });
    aedes.on('connectionError', (_client, err) => {
      this.#d.metrics.dropped.inc({ reason: 'malformed' });
      this.#d.log.debug({ err: err.message }, 'connection error');
    });
  }

  /**
   * A SAS token when the client sent a password; otherwise the TLS client certificate of a leaf
   * device (X.509), which the TLS listener requested but did not itself judge.
   */
  #authenticate(client: Client, username: string, password: Buffer | undefined): Identity {
    const token = password?.toString('utf8') ?? '';
    const conn = client.conn as unknown;
    if (token === '' && conn instanceof tls.TLSSocket) {
      const chain = peerCertificateChain(conn);
      if (chain.length)
        return this.#d.identities.authenticateCertificate(client.id, username, chain);
    }
    return this.#d.identities.authenticate(client.id, username, token);
  }

  /**
   * Ends the live sessions of these identities (`d` or `d/m`), for example leaf devices whose
   * access was revoked. Returns the ids that had one.
   */
  disconnect(ids: readonly string[]): string[] {
    const dropped: string[] = [];
    for (const id of ids) {
      const client = this.#clients.get(id);
      if (!client) continue;
      client.conn.destroy();
      dropped.push(id);
    }
    return dropped;
  }

  /** Ids of the leaf devices connected now. */
  connectedLeaves(): string[] {
    const ids: string[] = [];
    for (const client of this.#clients.values())
      if (this.#identities.get(client)?.kind === 'leaf') ids.push(client.id);
    return ids;
  }

  /** The largest MQTT packet accepted (bytes): a maximum-size message with its topic. */
  get maxPacketBytes(): number {
    return this.#d.limits.maxMessageBytes + this.#d.limits.maxTopicLength + PACKET_OVERHEAD_BYTES;
  }

  /**
   * Counts a socket upgraded to a WebSocket (on the method API's server) as a connection that has
   * not authenticated yet, like a TCP accept on the TLS listener. False when the guard refused it.
   */
  admitWebSocket(socket: net.Socket): boolean {
    socket.setNoDelay(true);
    this.#guard.admit(socket);
    return !socket.destroyed;
  }

  /** Hands an MQTT-over-WebSocket stream to aedes; `socket` is the TLS socket under it. */
  handleWebSocket(stream: Duplex, socket: net.Socket): void {
    this.#socketOf.set(stream, socket);
    this.#handle(stream);
  }

  /** Hands a new connection to aedes, behind the packet-size guard. */
  #handle(conn: net.Socket | tls.TLSSocket | Duplex): void {
    const client = this.aedes.handle(conn);
    const maxPacket = this.maxPacketBytes;
    guardPacketSize(
      client,
      () => maxPacket,
      (bytes) => {
        this.#d.metrics.dropped.inc({ reason: 'too_large' });
        this.#d.log.warn({ client: client.id, bytes }, 'packet too large, disconnecting');
      },
    );
  }

  /**
   * Starts the TLS listener (and the plain one when `plainPort` is set) on every address in
   * `hosts`, and the TLS listener on `sdkHosts` at the SDK's port 8883. Returns the bound ports.
   */
  async listen(options: {
    hosts: string[];
    /** Addresses that get a TLS listener on 8883 whatever `tlsPort` is (the module network). */
    sdkHosts: (boundTlsPort: number) => string[];
    tlsPort: number;
    plainPort: number | null;
    cert: string;
    key: string;
  }): Promise<{ tlsPort: number; plainPort: number | null }> {
    const createTls = (): net.Server => {
      const server = tls.createServer(
        {
          cert: options.cert,
          key: options.key,
          minVersion: TLS_MIN_VERSION,
          // X.509 leaf devices present a client certificate; the hub checks its thumbprint
          // against the leaf's EdgeDevice at CONNECT (see #authenticate), so TLS accepts any.
          requestCert: true,
          rejectUnauthorized: false,
          // The pre-auth guard enforces the deadline (and counts it); this is only a backstop.
          handshakeTimeout: this.#d.limits.connectTimeoutMs + HANDSHAKE_BACKSTOP_MS,
        },
        (s) => this.#handle(s),
      );
      // Nagle + delayed ACK costs ~40 ms per QoS1 round trip; disable it on the raw socket.
      server.on('connection', (s: net.Socket) => {
        s.setNoDelay(true);
        this.#guard.admit(s);
      });
      // Node only reports a failed or timed-out handshake; the socket stays open unless closed.
      server.on('tlsClientError', (err, socket) => {
        this.#d.metrics.refused.inc({ listener: 'mqtt', reason: 'tls_error' });
        this.#d.log.debug({ err: err.message }, 'TLS handshake failed');
        socket.destroy();
      });
      return server;
    };
    const tlsListen = await listenOn(createTls, options.tlsPort, options.hosts, 'hub.tlsPort');
    this.#servers.push(...tlsListen.servers);
    this.#tlsServers = tlsListen.servers as tls.Server[];
    const sdkHosts = options.sdkHosts(tlsListen.port);
    if (sdkHosts.length > 0) {
      const sdk = await listenOn(createTls, SDK_PORTS.mqtts, sdkHosts, 'module network MQTT/TLS');
      this.#servers.push(...sdk.servers);
      this.#tlsServers.push(...(sdk.servers as tls.Server[]));
    }
    let plainPort: number | null = null;
    if (options.plainPort !== null) {
      const createPlain = (): net.Server =>
        net.createServer({ noDelay: true }, (s) => {
          this.#guard.admit(s);
          if (!s.destroyed) this.#handle(s);
        });
      const plain = await listenOn(createPlain, options.plainPort, options.hosts, 'hub.plainPort');
      this.#servers.push(...plain.servers);
      plainPort = plain.port;
    }
    this.#sweep = setInterval(() => this.#sweepBacklogs(), BACKLOG_SWEEP_MS);
    this.#sweep.unref();
    return { tlsPort: tlsListen.port, plainPort };
  }

  /** Serves a new certificate to new TLS connections; open ones keep theirs. */
  setSecureContext(pair: { cert: string; key: string }): void {
    for (const s of this.#tlsServers) s.setSecureContext({ ...pair, minVersion: TLS_MIN_VERSION });
  }

  /** Disconnects clients that do not read what the hub sends (bounded per-client memory). */
  #sweepBacklogs(): void {
    const now = Date.now();
    for (const client of this.#clients.values()) {
      const conn = client.conn;
      if (!conn.writableNeedDrain) this.#stalledSince.delete(client);
      else if (!this.#stalledSince.has(client)) this.#stalledSince.set(client, now);
      const stalledMs = now - (this.#stalledSince.get(client) ?? now);
      if (conn.writableLength <= this.#d.limits.maxClientBacklogBytes && stalledMs < MAX_STALL_MS)
        continue;
      this.#d.metrics.dropped.inc({ reason: 'slow_client' });
      this.#d.log.warn(
        { client: client.id, bytes: conn.writableLength, stalledMs },
        'client not reading, disconnecting',
      );
      conn.destroy();
    }
  }

  async close(): Promise<void> {
    if (this.#sweep) clearInterval(this.#sweep);
    for (const s of this.#servers) s.close();
    for (const c of this.#clients.values()) c.conn.destroy();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    this.#servers = [];
    this.#tlsServers = [];
  }
}
