/**
 * Where the cloud plane keeps things in NATS: stream, bucket and subject names, shared by the
 * controller and the gateways. docs/adr/0009-cloud-plane-on-nats.md explains the layout.
 *
 * Subject tokens and key segments: any character outside `[A-Za-z0-9-]` (a device name's dots,
 * which NATS reads as separators, or a module id's punctuation) is written `=XX`, its hex code.
 */

/** JetStream streams. */
export const Streams = {
  /** Every telemetry message a device handed over, one NATS message each. */
  telemetry: 'KEDGE_TELEMETRY',
  /** Telemetry the cloud refused to store, with the reason in a header. */
  deadLetter: 'KEDGE_DEADLETTER',
  /** Cloud-to-device messages waiting for their device, one subject per leaf, each with a TTL. */
  c2d: 'KEDGE_C2D',
} as const;

/** JetStream key-value buckets; keys are {@link deviceKey} (twins add `.module`). */
export const Buckets = {
  /** The desired state of each device (a {@link DesiredMessage} as JSON). */
  desired: 'kedge_desired',
  /** The last report of each device (a ReportedMessage as JSON). */
  reported: 'kedge_reported',
  /** Each module's reported twin properties. */
  twins: 'kedge_twins',
  /** Each twin's desired patches from the service API, composed into one ({@link StoredTwin}). */
  desiredTwins: 'kedge_desired_twins',
  /** Each device's SAS keys, read by the gateways to authenticate it. */
  credentials: 'kedge_credentials',
} as const;

/** Headers the cloud plane sets on its messages. */
export const Headers = {
  /** JetStream de-duplication id: `<ns>.<device>.<hub queue seq>.<enqueuedAt>`. */
  msgId: 'Nats-Msg-Id',
  /** Why a message was dead-lettered. */
  deadLetterReason: 'Kedge-Dead-Letter-Reason',
  /** The kind of a log-stream frame: `data` or `end`. */
  frame: 'Kedge-Frame',
  /** An error carried by an `end` frame or a failed request. */
  error: 'Kedge-Error',
} as const;

/** A name as one subject token or key segment. */
export function token(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `=${b.toString(16).padStart(2, '0')}`).join(''),
  );
}

/** The inverse of {@link token}. */
export function untoken(value: string): string {
  return decodeURIComponent(value.replace(/=([0-9a-f]{2})/g, '%$1'));
}

/** The KV key of a device: `<ns>.<device>`. */
export function deviceKey(namespace: string, device: string): string {
  return `${namespace}.${token(device)}`;
}

/** Splits a {@link deviceKey} (or a subject's last two tokens) back into its parts. */
export function parseDeviceKey(key: string): { namespace: string; device: string } | undefined {
  const [namespace, device, ...rest] = key.split('.');
  if (!namespace || !device || rest.length > 0) return undefined;
  return { namespace, device: untoken(device) };
}

/** The KV key of a module twin: `<ns>.<device>.<module>`. */
export function twinKey(namespace: string, device: string, module: string): string {
  return `${deviceKey(namespace, device)}.${token(module)}`;
}

const LEAF_TWIN_PREFIX = '$leaf/';

/**
 * The twin-bucket "module" under which a leaf device's reported twin is kept, beside its gateway's
 * module twins: `$` cannot start a module id, so the two never collide.
 */
export function leafTwinModule(leaf: string): string {
  return `${LEAF_TWIN_PREFIX}${leaf}`;
}

/** The leaf device a twin-bucket "module" stands for, or undefined for a real module. */
export function leafOfTwinModule(module: string): string | undefined {
  return module.startsWith(LEAF_TWIN_PREFIX) ? module.slice(LEAF_TWIN_PREFIX.length) : undefined;
}

/** Requests a controller sends to whichever gateway holds the device. */
export type RequestKind = 'method' | 'logs' | 'logs-cancel' | 'stream-open' | 'stream';

export const Subjects = {
  telemetry: (ns: string, device: string): string => `kedge.telemetry.${deviceKey(ns, device)}`,
  /** All telemetry of one namespace: what a namespace's consumer may read. */
  telemetryOf: (ns: string): string => `kedge.telemetry.${ns}.*`,
  telemetryAll: 'kedge.telemetry.>',
  deadLetter: (ns: string, device: string): string => `kedge.deadletter.${deviceKey(ns, device)}`,
  deadLetterAll: 'kedge.deadletter.>',
  /** Gateways announce connects, disconnects and heartbeats here. */
  presence: (ns: string, device: string): string => `kedge.presence.${deviceKey(ns, device)}`,
  presenceAll: 'kedge.presence.>',
  /** Gateways forward each device's usage samples here, unstored: only the latest matters. */
  usage: (ns: string, device: string): string => `kedge.usage.${deviceKey(ns, device)}`,
  usageAll: 'kedge.usage.>',
  request: (ns: string, device: string, kind: RequestKind): string =>
    `kedge.req.${deviceKey(ns, device)}.${kind}`,
  /** Every request for one device, subscribed by the gateway holding it. */
  requestsOf: (ns: string, device: string): string => `kedge.req.${deviceKey(ns, device)}.*`,
  /** Tells every gateway to drop a device's session. */
  disconnect: (ns: string, device: string): string =>
    `kedge.ctl.disconnect.${deviceKey(ns, device)}`,
  disconnectAll: 'kedge.ctl.disconnect.>',
  /** C2D messages for leaf `leaf` behind edge device `device`. */
  c2d: (ns: string, device: string, leaf: string): string =>
    `kedge.c2d.${deviceKey(ns, device)}.${token(leaf)}`,
  /** Every C2D message that goes through one edge device. */
  c2dOf: (ns: string, device: string): string => `kedge.c2d.${deviceKey(ns, device)}.*`,
  c2dAll: 'kedge.c2d.>',
} as const;

/** The device a subject is about: its last two tokens (after `skip` leading tokens). */
export function deviceOfSubject(
  subject: string,
  skip: number,
): { namespace: string; device: string } | undefined {
  const parts = subject.split('.');
  if (parts.length < skip + 2) return undefined;
  return parseDeviceKey(`${parts[skip]}.${parts[skip + 1]}`);
}

/** What a gateway says about a device on its presence subject. */
export interface PresenceEvent {
  event: 'connected' | 'disconnected' | 'heartbeat';
  /** The gateway instance that holds (or held) the session. */
  gateway: string;
  /** A fresh id per device session, so a late `disconnected` of an old session is ignored. */
  session: string;
  at: string;
}

/**
 * The credentials record of a device in {@link Buckets.credentials}: SAS keys, or the X.509
 * certificates it may present. Nothing at all means revoked.
 */
export interface CredentialsRecord {
  /** Base64 keys the device may sign its SAS tokens with. */
  keys: string[];
  /** SHA-256 thumbprints (lowercase hex) of the client certificates it may present. */
  thumbprints?: string[];
  /** PEM CA certificates; a client certificate they sign with CN = the device name is accepted. */
  caCertificates?: string[];
}

/** A C2D message in {@link Streams.c2d}; its subject names the edge device and the leaf. */
export interface StoredC2d {
  /** Body, base64. */
  body: string;
  properties: Record<string, string>;
}

/**
 * One section of a module or leaf twin as the cloud plane stores it: the reported properties the
 * device's patches merged into, or the desired patches the service API composed.
 */
export interface StoredTwin {
  /** The module id, or {@link leafTwinModule} for a leaf device. */
  module: string;
  /** Increases by one with every patch. */
  version: number;
  properties: Record<string, unknown>;
}
