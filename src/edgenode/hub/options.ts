/**
 * Hub configuration: one typed options object, one documented defaults object, and the JSON
 * schema that the `kedge node` YAML config embeds under its `hub:` key.
 */
import type { RouteSpec } from '../../common/routes/index.js';
import type { ListenAddresses } from './listen.js';
import type { ServerCertLifetime } from './pki-store.js';

/** A leaf device allowed to connect through this hub (configured list; cloud-synced later). */
export interface LeafDeviceOptions {
  deviceId: string;
  /** Base64 symmetric key. */
  primaryKey: string;
  /** Base64 symmetric key accepted as well (key rotation). */
  secondaryKey?: string;
}

/** Where `$upstream` goes when kedge runs standalone (the cloud link comes later). */
export type UpstreamOptions =
  | { type: 'none' }
  | { type: 'stdout' }
  /** JSON lines appended to `path`, fsynced per batch. */
  | { type: 'file'; path: string }
  /**
   * An external MQTT broker such as Mosquitto. Messages go to
   * `{topicPrefix}/devices/{d}[/modules/{m}]/messages/events/{bag}` with QoS1.
   */
  | { type: 'mqtt'; url: string; topicPrefix?: string; username?: string; password?: string };

/** Store-and-forward for `$upstream`. */
export interface StoreAndForwardOptions {
  /** Default message time to live (seconds); a route's `timeToLiveSecs` overrides it. Default 7200. */
  timeToLiveSecs: number;
  /** Queue size bound in bytes (bodies + headers). Default 1 GiB. */
  maxBytes: number;
  /** Queue size bound in messages. Default 10,000,000. */
  maxMessages: number;
  /**
   * What happens when the bound is hit: `drop-oldest` deletes the oldest message of the lowest
   * priority (counted as `queue_full`), `reject-new` refuses the publish (no PUBACK). Default
   * `drop-oldest`.
   */
  dropPolicy: 'drop-oldest' | 'reject-new';
  /**
   * `sqlite` (durable, WAL + synchronous=FULL) or `memory` (tests only), for this queue and for
   * the messages queued for stopped modules. Default `sqlite`.
   */
  backend: 'sqlite' | 'memory';
}

/** Limits applied per message and per client. */
export interface HubLimits {
  /** Largest message body accepted (bytes). Default 262,144 (256 KiB), as IoT Hub. */
  maxMessageBytes: number;
  /** Longest topic accepted (characters). Default 4096. */
  maxTopicLength: number;
  /** Most properties in a property bag. Default 64. */
  maxProperties: number;
  /** Output bytes buffered for one client before it is disconnected. Default 8 MiB. */
  maxClientBacklogBytes: number;
  /**
   * Time from TCP accept to an accepted CONNECT (MQTT) or a finished TLS handshake (method API),
   * in ms; the socket is closed after it, however slowly it keeps sending. Default 10,000.
   */
  connectTimeoutMs: number;
  /**
   * Connections one source address may hold open before they authenticate (per service); more
   * are closed at accept. Default 64.
   */
  maxPendingPerSource: number;
  /** Default direct-method response timeout (seconds). Default 30. */
  methodTimeoutSecs: number;
  /**
   * QoS 1 messages kept for one clean:false client (a module) while it is stopped or slow; beyond
   * it the oldest is dropped (`queue_full`). They expire with the store-and-forward TTL and are on
   * disk with the `sqlite` backend. Default 10,000.
   */
  maxSessionMessages: number;
  /** Bytes (topic and payload) kept for one such client, as `maxSessionMessages`. Default 64 MiB. */
  maxSessionBytes: number;
}

/** Hub options. Everything except `deviceId` and `dataDir` has a default in {@link HUB_DEFAULTS}. */
export interface HubOptions {
  /** The edge device id (the hub's own device; modules are `{deviceId}/{moduleId}`). */
  deviceId: string;
  /** Directory for the CA, server certificate, identities, twins and the queue. */
  dataDir: string;
  /** IoT Hub host name put in module env and accepted as SAS audience. Default `kedge.local`. */
  iotHubHostName: string;
  /** Host name modules and leaf devices dial (`GatewayHostName`). Default `kedge-hub`. */
  gatewayHostName: string;
  /** Extra DNS names or IPs for the server certificate SAN. Default `['localhost', '127.0.0.1']`. */
  extraHostNames: string[];
  /**
   * Addresses the MQTT listeners and the direct-method API bind, on `tlsPort` and `methodsPort`.
   * Default `127.0.0.1`: nothing outside the device reaches the hub unless configured. Leaf
   * devices need the device's LAN address here (or `0.0.0.0`, every interface).
   */
  host: ListenAddresses;
  /**
   * The module network's gateway address, set by `kedge node` with the Docker runtime (not a
   * configuration key). The hub's MQTT/TLS and method listeners bind it on the ports the SDKs dial
   * ({@link SDK_PORTS}: 8883 and 443), whatever `tlsPort` and `methodsPort` say, because
   * `IOTEDGE_GATEWAYHOSTNAME` carries no port. Only containers on that network reach it.
   * Left out (the default): no module network.
   */
  moduleHost?: string;
  /**
   * Addresses the workload API's TCP listener binds. Default `127.0.0.1`; `kedge node` adds the
   * module network's gateway address. Only modules need it: never put a LAN address here.
   */
  workloadHost: ListenAddresses;
  /**
   * MQTT over TLS port on `host`. Default 8883, the port every SDK dials: with another port, local
   * process modules and leaf devices must be told the port some other way (the hub warns).
   */
  tlsPort: number;
  /** Plain MQTT port for development; `null` (default) disables it. */
  plainPort: number | null;
  /**
   * HTTPS port of the direct-method API (`POST /twins/{d}[/modules/{m}]/methods`) that
   * `ModuleClient.invokeMethod` calls. The SDK always dials 443 on the gateway host, so other
   * values only suit tests and proxies. Default 443; `null` disables it.
   */
  methodsPort: number | null;
  /**
   * MQTT over WebSockets (the SDKs' `MqttWs` transport): WebSocket upgrades to
   * `/$iothub/websocket` with subprotocol `mqtt` on the method API's port, authenticated and
   * limited as on `tlsPort`. The SDKs dial 443 for it, so it needs `methodsPort` (443) and is off
   * when `methodsPort` is `null`. Default true.
   */
  mqttWebSockets: boolean;
  /** Workload API TCP port. Default 15580; `null` disables TCP. */
  workloadPort: number | null;
  /** Workload API unix socket path; `null` disables it. Default `{dataDir}/workload.sock`. */
  workloadSocket: string | null;
  /** How containers reach the hub host (`--add-host kedge-hub:host-gateway`). Default `kedge-hub`. */
  containerHostName: string;
  /** Routes by name, as in `$edgeHub` desired properties. Default `{}`. */
  routes: Record<string, string | Omit<RouteSpec, 'name'>>;
  storeAndForward: StoreAndForwardOptions;
  /** Module twins: desired properties per module id (`<module>.properties.desired`). */
  modules: Record<string, { desiredProperties?: Record<string, unknown> }>;
  leafDevices: LeafDeviceOptions[];
  upstream: UpstreamOptions;
  limits: HubLimits;
  /**
   * Server certificate lifetime: 90 days, re-issued while the hub runs when 14 days remain.
   * Short values suit tests only.
   */
  serverCert: ServerCertLifetime;
}

/**
 * The ports the Azure IoT SDKs dial on `GatewayHostName`, which carries no port: MQTT/TLS 8883
 * (AMQP/TLS 5671 is not served) and HTTPS 443 for module-to-module direct methods (and MQTT over
 * WebSockets).
 */
export const SDK_PORTS = { mqtts: 8883, https: 443 } as const;

/** Options callers pass: required fields plus any overrides. */
export type HubOptionsInput = Pick<HubOptions, 'deviceId' | 'dataDir'> &
  Partial<Omit<HubOptions, 'storeAndForward' | 'limits' | 'serverCert'>> & {
    storeAndForward?: Partial<StoreAndForwardOptions>;
    limits?: Partial<HubLimits>;
    serverCert?: Partial<ServerCertLifetime>;
  };

const DAY_SECS = 24 * 3600;

/** The defaults, in one place. */
export const HUB_DEFAULTS: Omit<HubOptions, 'deviceId' | 'dataDir' | 'workloadSocket'> = {
  iotHubHostName: 'kedge.local',
  gatewayHostName: 'kedge-hub',
  extraHostNames: ['localhost', '127.0.0.1'],
  host: '127.0.0.1',
  workloadHost: '127.0.0.1',
  tlsPort: 8883,
  methodsPort: 443,
  mqttWebSockets: true,
  plainPort: null,
  workloadPort: 15580,
  containerHostName: 'kedge-hub',
  routes: {},
  storeAndForward: {
    timeToLiveSecs: 7200,
    maxBytes: 1024 * 1024 * 1024,
    maxMessages: 10_000_000,
    dropPolicy: 'drop-oldest',
    backend: 'sqlite',
  },
  modules: {},
  leafDevices: [],
  upstream: { type: 'none' },
  limits: {
    maxMessageBytes: 256 * 1024,
    maxTopicLength: 4096,
    maxProperties: 64,
    maxClientBacklogBytes: 8 * 1024 * 1024,
    connectTimeoutMs: 10_000,
    // Process-runtime modules all dial from loopback and reconnect together after a hub restart:
    // 64 covers a large device's modules at once, and is a tiny share of the descriptor limit.
    maxPendingPerSource: 64,
    methodTimeoutSecs: 30,
    maxSessionMessages: 10_000,
    maxSessionBytes: 64 * 1024 * 1024,
  },
  // Short-lived relative to the 10-year device CA; two weeks of margin covers a device that was
  // off, since the hub re-issues at start too.
  serverCert: { validitySecs: 90 * DAY_SECS, renewBeforeSecs: 14 * DAY_SECS },
};

/** Fills in defaults. */
export function resolveHubOptions(input: HubOptionsInput): HubOptions {
  return {
    ...HUB_DEFAULTS,
    workloadSocket: `${input.dataDir}/workload.sock`,
    ...input,
    storeAndForward: { ...HUB_DEFAULTS.storeAndForward, ...input.storeAndForward },
    limits: { ...HUB_DEFAULTS.limits, ...input.limits },
    serverCert: { ...HUB_DEFAULTS.serverCert, ...input.serverCert },
  };
}

const port = { type: 'integer', minimum: 0, maximum: 65535 };
const nullablePort = { type: ['integer', 'null'], minimum: 0, maximum: 65535 };
const address = { type: 'string', minLength: 1 };
const addresses = { oneOf: [address, { type: 'array', items: address }] };

/** JSON schema of {@link HubOptionsInput} for embedding under `hub:` in the node config. */
export const hubOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['deviceId', 'dataDir'],
  properties: {
    deviceId: { type: 'string', minLength: 1, description: 'Edge device id.' },
    dataDir: { type: 'string', minLength: 1, description: 'Directory for PKI, twins, queue.' },
    iotHubHostName: { type: 'string', description: 'IoT Hub host name. Default kedge.local.' },
    gatewayHostName: { type: 'string', description: 'GatewayHostName. Default kedge-hub.' },
    extraHostNames: { type: 'array', items: { type: 'string' } },
    host: { ...addresses, description: 'MQTT and method API addresses. Default 127.0.0.1.' },
    workloadHost: { ...addresses, description: 'Workload API TCP addresses. Default 127.0.0.1.' },
    methodsPort: {
      ...nullablePort,
      description: 'Direct-method HTTPS and MQTT-over-WebSockets port. Default 443.',
    },
    mqttWebSockets: {
      type: 'boolean',
      description: 'MQTT over WebSockets (/$iothub/websocket) on methodsPort. Default true.',
    },
    tlsPort: { ...port, description: 'MQTT/TLS port. Default 8883.' },
    plainPort: { ...nullablePort, description: 'Plain MQTT port (development). Default off.' },
    workloadPort: { ...nullablePort, description: 'Workload API TCP port. Default 15580.' },
    workloadSocket: { type: ['string', 'null'], description: 'Workload API unix socket.' },
    containerHostName: { type: 'string', description: 'Host alias containers use.' },
    routes: {
      type: 'object',
      additionalProperties: {
        oneOf: [
          { type: 'string' },
          {
            type: 'object',
            additionalProperties: false,
            required: ['route'],
            properties: {
              route: { type: 'string' },
              priority: { type: 'integer', minimum: 0, maximum: 9 },
              timeToLiveSecs: { type: 'integer', minimum: 0 },
            },
          },
        ],
      },
    },
    storeAndForward: {
      type: 'object',
      additionalProperties: false,
      properties: {
        timeToLiveSecs: { type: 'integer', minimum: 1, description: 'Default 7200 s.' },
        maxBytes: { type: 'integer', minimum: 1, description: 'Default 1 GiB.' },
        maxMessages: { type: 'integer', minimum: 1 },
        dropPolicy: { enum: ['drop-oldest', 'reject-new'] },
        backend: { enum: ['sqlite', 'memory'] },
      },
    },
    modules: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: { desiredProperties: { type: 'object' } },
      },
    },
    leafDevices: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['deviceId', 'primaryKey'],
        properties: {
          deviceId: { type: 'string', minLength: 1 },
          primaryKey: { type: 'string', minLength: 1 },
          secondaryKey: { type: 'string' },
        },
      },
    },
    upstream: {
      type: 'object',
      required: ['type'],
      properties: {
        type: { enum: ['none', 'stdout', 'file', 'mqtt'] },
        path: { type: 'string' },
        url: { type: 'string' },
        topicPrefix: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxMessageBytes: { type: 'integer', minimum: 1 },
        maxTopicLength: { type: 'integer', minimum: 64 },
        maxProperties: { type: 'integer', minimum: 1 },
        maxClientBacklogBytes: { type: 'integer', minimum: 1024 },
        connectTimeoutMs: { type: 'integer', minimum: 100 },
        maxPendingPerSource: { type: 'integer', minimum: 1 },
        methodTimeoutSecs: { type: 'integer', minimum: 1 },
        maxSessionMessages: { type: 'integer', minimum: 1 },
        maxSessionBytes: { type: 'integer', minimum: 1024 },
      },
    },
    serverCert: {
      type: 'object',
      additionalProperties: false,
      description: 'Server certificate lifetime (tests). Default 90 days, renewed 14 days before.',
      properties: {
        validitySecs: { type: 'integer', minimum: 2 },
        renewBeforeSecs: { type: 'integer', minimum: 1 },
      },
    },
  },
} as const;
