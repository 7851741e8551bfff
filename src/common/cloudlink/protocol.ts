/**
 * The link between `kedge node` and the controller's cloud hub: MQTT over TLS, dialled out by the
 * device. Every device topic lives under `kedge/v1/devices/{namespace}/{device}/`, and a device's
 * credentials only reach its own subtree. Payloads are JSON unless noted.
 */
import type { DeviceFacts } from './facts.js';

export const PROTOCOL_ROOT = 'kedge/v1';

/** Topic leaves under a device's subtree, with their direction. */
export const Leaf = {
  /** cloud → device, QoS1: {@link DesiredMessage}. Resent on every reconnect. */
  desired: 'desired',
  /** device → cloud, QoS1: {@link ReportedMessage}. Sent on change and on connect. */
  reported: 'reported',
  /** device → cloud, QoS0: {@link HeartbeatMessage}. */
  heartbeat: 'heartbeat',
  /** device → cloud, QoS0: a `UsageMessage` (usage.ts) every usage interval; a lost one is replaced by the next. */
  usage: 'usage',
  /** device → cloud, QoS1: {@link TelemetryMessage}, upstream messages from the hub. */
  telemetry: 'telemetry',
  /** device → cloud, QoS1: {@link TwinReportedMessage}. */
  twinReported: 'twin/reported',
  /** cloud → device, QoS1: {@link TwinDesiredMessage}. Each twin's is resent on every reconnect. */
  twinDesired: 'twin/desired',
  /** cloud → device, QoS1: {@link LogRequest}. */
  logRequest: 'logs/request',
  /** cloud → device, QoS1: {@link LogCancel}. */
  logCancel: 'logs/cancel',
  /** device → cloud, QoS1: `logs/data/{requestId}`, raw log bytes. */
  logData: 'logs/data',
  /** device → cloud, QoS1: `logs/end/{requestId}`, {@link LogEnd}. */
  logEnd: 'logs/end',
  /** cloud → device, QoS1: {@link MethodRequest}. */
  methodRequest: 'methods/request',
  /** device → cloud, QoS1: `methods/response/{requestId}`, {@link MethodResponse}. */
  methodResponse: 'methods/response',
  /** cloud → device, QoS1: {@link C2dMessage} for a leaf device behind this device's hub. */
  c2d: 'c2d',
  /** device → cloud, QoS1: `c2d/ack/{id}`, {@link C2dAck} once the hub holds the message. */
  c2dAck: 'c2d/ack',
  /** cloud → device, QoS1: session frames (streams.ts) for exec, attach and port-forward. */
  streamDown: 'stream/down',
  /** device → cloud, QoS1: session frames (streams.ts) from the device. */
  streamUp: 'stream/up',
} as const;

/** The leaves the cloud sends on: a device subscribes to each, and may subscribe to no other. */
export const DOWNSTREAM_LEAVES: readonly string[] = [
  Leaf.desired,
  Leaf.twinDesired,
  Leaf.logRequest,
  Leaf.logCancel,
  Leaf.methodRequest,
  Leaf.c2d,
  Leaf.streamDown,
];

/** The topic of `leaf` for one device. */
export function deviceTopic(namespace: string, device: string, leaf: string): string {
  return `${PROTOCOL_ROOT}/devices/${namespace}/${device}/${leaf}`;
}

/** The subtree a device's credentials may touch. */
export function deviceSubtree(namespace: string, device: string): string {
  return `${PROTOCOL_ROOT}/devices/${namespace}/${device}/`;
}

/** Parses a device topic into its parts, or undefined. */
export function parseDeviceTopic(
  topic: string,
): { namespace: string; device: string; leaf: string } | undefined {
  const prefix = `${PROTOCOL_ROOT}/devices/`;
  if (!topic.startsWith(prefix)) return undefined;
  const [namespace, device, ...rest] = topic.slice(prefix.length).split('/');
  if (!namespace || !device || rest.length === 0) return undefined;
  return { namespace, device, leaf: rest.join('/') };
}

/** The MQTT username a device presents: `{namespace}/{device}`. The password is a SAS token. */
export function deviceUsername(namespace: string, device: string): string {
  return `${namespace}/${device}`;
}

/** The SAS resource URI a device token is signed for. */
export function deviceResourceUri(namespace: string, device: string): string {
  return `kedge/devices/${namespace}/${device}`;
}

/** Desired state for a device: an IoT Edge deployment manifest (`modulesContent`), versioned. */
export interface DesiredMessage {
  /** Monotonic version; the device reports which version it applied. */
  version: number;
  /** `{ $edgeAgent: …, $edgeHub: …, <module>: … }` as in an IoT Edge deployment. */
  modulesContent: Record<string, unknown>;
  /**
   * Leaf devices that may connect through this device's hub: the EdgeDevices whose `spec.parent`
   * names this device. The hub caches the list on disk. Absent means none.
   */
  leafDevices?: LeafIdentity[];
}

/**
 * One leaf device's identity as its parent's hub checks it: SAS keys, X.509 thumbprints, or the
 * CA certificates that sign its X.509 certificates (whose subject CN is then its device id).
 */
export interface LeafIdentity {
  /** The leaf's device id: its EdgeDevice name. */
  deviceId: string;
  /** Base64 symmetric keys (primary, then secondary) its SAS tokens may be signed with. */
  keys?: string[];
  /** SHA-256 thumbprints (lowercase hex) of the client certificates it may present. */
  thumbprints?: string[];
  /** PEM CA certificates; a client certificate they sign, with CN = the device id, is accepted. */
  caCertificates?: string[];
}

/** Connected leaf ids one report lists at most, so a busy gateway keeps its report small. */
export const MAX_REPORTED_LEAVES = 256;

/** Runtime state of one module, as IoT Edge reports it. */
export interface ModuleReport {
  name: string;
  image?: string;
  imageID?: string;
  /** Runtime-prefixed container ID, `docker://<id>` or `process://<pid>`. */
  containerID?: string;
  runtimeStatus: 'unknown' | 'backoff' | 'running' | 'unhealthy' | 'stopped' | 'failed' | 'dead';
  exitCode?: number;
  statusDescription?: string;
  restartCount: number;
  lastStartTimeUtc?: string;
  lastExitTimeUtc?: string;
  lastRestartTimeUtc?: string;
  /** `ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`, `CreateContainerError`… */
  reason?: string;
  /**
   * The cluster's spec hash (the pod's `kedge.io/spec-hash`) of the desired module this status
   * is about. Absent from agents older than safe rollouts and for modules without one.
   */
  specHash?: string;
  /** When the agent last began pulling this module's image (its `Pulling` Event). */
  pullStartedTimeUtc?: string;
}

/** What a device reports: facts, the applied desired version and every module. */
export interface ReportedMessage {
  /** Desired version the agent last applied (0 before any). */
  desiredVersion: number;
  /** Outcome of applying it. */
  outcome: { status: 'applied' | 'rejected' | 'pending'; message?: string };
  facts: DeviceFacts;
  modules: ModuleReport[];
  /** Leaf devices connected to the hub now (at most {@link MAX_REPORTED_LEAVES}). */
  leaves?: string[];
  /** ISO time of the report. */
  at: string;
}

export interface HeartbeatMessage {
  at: string;
}

/** One upstream message as the hub forwards it. */
export interface UpstreamMessage {
  /**
   * The hub's queue sequence number: a message re-sent after a lost ack carries the same one and
   * the same `enqueuedAt`, so the cloud drops the copy (JetStream de-duplication).
   */
  seq?: number;
  /** Body, base64. */
  body: string;
  /** Application properties. */
  properties: Record<string, string>;
  /** System properties: `$.cdid`, `$.cmid`, `$.on`, content type… */
  systemProperties: Record<string, string>;
  /** ISO time the hub accepted the message. */
  enqueuedAt: string;
  /** Route priority 0–9. */
  priority?: number;
}

export interface TelemetryMessage {
  messages: UpstreamMessage[];
}

export interface TwinReportedMessage {
  /** The module; empty for a leaf device. */
  module: string;
  /** The leaf device behind the hub whose twin this is, instead of a module. */
  leaf?: string;
  patch: Record<string, unknown>;
  version: number;
}

/**
 * The desired patches the service API sent for one module or leaf twin, composed into one layer
 * (`null`s kept). The hub applies what changed since the layer it last applied.
 */
export interface TwinDesiredMessage {
  /** The module; empty for a leaf device. */
  module: string;
  /** The leaf device behind the hub whose twin this is, instead of a module. */
  leaf?: string;
  properties: Record<string, unknown>;
  /** The layer's version in the cloud plane; increases with every patch. */
  version: number;
}

export interface LogRequest {
  id: string;
  module: string;
  follow?: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  sinceTime?: string;
  timestamps?: boolean;
  limitBytes?: number;
}

export interface LogCancel {
  id: string;
}

export interface LogEnd {
  error?: string;
}

export interface MethodRequest {
  id: string;
  /** The module; empty when the method is for a leaf device. */
  module: string;
  /** The leaf device behind this device's hub the method is for, instead of a module. */
  leaf?: string;
  method: string;
  payload: unknown;
  timeoutSecs: number;
}

export interface MethodResponse {
  status: number;
  payload: unknown;
}

/** A cloud-to-device message for a leaf device, as the gateway hands it to the device. */
export interface C2dMessage {
  /** The cloud plane's id of this delivery; the device acknowledges it on `c2d/ack/{id}`. */
  id: string;
  /** The leaf device it is for. */
  deviceId: string;
  /** Body, base64. */
  body: string;
  /** Application properties plus IoT Hub's system ones (`$.mid`, `$.cid`, `$.ct`, `$.ce`, `$.exp`). */
  properties: Record<string, string>;
}

/** The device's answer to a {@link C2dMessage}: no error means its hub holds the message. */
export interface C2dAck {
  /** Why the hub did not take it. */
  error?: string;
  /** The failure may pass (the hub is starting): the cloud keeps the message and tries again. */
  retry?: boolean;
}
