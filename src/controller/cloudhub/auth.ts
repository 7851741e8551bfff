import {
  deviceResourceUri,
  deviceSubtree,
  Leaf,
  PROTOCOL_ROOT,
} from '../../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import { verifySasToken } from '../../common/iothub/index.js';
import { timingSafeEqual } from 'node:crypto';

/** Who is on the other end of a cloud-hub connection. */
export type CloudIdentity =
  | { kind: 'device'; namespace: string; device: string }
  | { kind: 'consumer'; name: string; namespaces: string[] | '*' };

/** Looks up the current keys of a device (primary, secondary), base64; undefined if unknown. */
export type DeviceKeyLookup = (namespace: string, device: string) => string[] | undefined;

/** A telemetry consumer allowed to subscribe to `kedge/v1/telemetry/…`. */
export interface TelemetryConsumer {
  username: string;
  password: string;
  /** Namespaces it may read; `*` for all. Defaults to all. */
  namespaces?: string[] | '*';
}

const CONSUMER_PREFIX = 'consumer:';

/** Authenticates a CONNECT: devices by SAS token, consumers by configured password. */
export function authenticate(
  username: string | undefined,
  password: Buffer | undefined,
  keys: DeviceKeyLookup,
  consumers: readonly TelemetryConsumer[],
): CloudIdentity {
  if (!username || !password) throw unauthorized('username and password are required');
  if (username.startsWith(CONSUMER_PREFIX))
    return authenticateConsumer(username, password, consumers);
  const [namespace, device, ...rest] = username.split('/');
  if (!namespace || !device || rest.length > 0)
    throw unauthorized('username must be <namespace>/<device>');
  const deviceKeys = keys(namespace, device);
  if (!deviceKeys?.length) throw unauthorized(`unknown device ${namespace}/${device}`);
  verifySasToken(password.toString('utf8'), {
    audiences: [deviceResourceUri(namespace, device)],
    keysBase64: deviceKeys,
  });
  return { kind: 'device', namespace, device };
}

function authenticateConsumer(
  username: string,
  password: Buffer,
  consumers: readonly TelemetryConsumer[],
): CloudIdentity {
  const name = username.slice(CONSUMER_PREFIX.length);
  const consumer = consumers.find((c) => c.username === name);
  const expected = Buffer.from(consumer?.password ?? '');
  const ok =
    consumer !== undefined &&
    expected.length === password.length &&
    timingSafeEqual(expected, password);
  if (!ok) throw unauthorized(`consumer ${name} is not authorized`);
  return { kind: 'consumer', name, namespaces: consumer.namespaces ?? '*' };
}

/** Leaves a device may publish to, under its own subtree. */
const DEVICE_PUBLISH = [Leaf.reported, Leaf.heartbeat, Leaf.telemetry, Leaf.twinReported];
const DEVICE_PUBLISH_PREFIXES = [`${Leaf.logData}/`, `${Leaf.logEnd}/`, `${Leaf.methodResponse}/`];
/** Leaves a device may subscribe to. */
const DEVICE_SUBSCRIBE = [Leaf.desired, Leaf.logRequest, Leaf.logCancel, Leaf.methodRequest];

export function mayPublish(identity: CloudIdentity, topic: string): boolean {
  if (identity.kind !== 'device') return false;
  const subtree = deviceSubtree(identity.namespace, identity.device);
  if (!topic.startsWith(subtree)) return false;
  const leaf = topic.slice(subtree.length);
  return (
    DEVICE_PUBLISH.includes(leaf as (typeof DEVICE_PUBLISH)[number]) ||
    DEVICE_PUBLISH_PREFIXES.some(
      (p) =>
        leaf.startsWith(p) && leaf.length > p.length && !leaf.includes('+') && !leaf.includes('#'),
    )
  );
}

export function maySubscribe(identity: CloudIdentity, topic: string): boolean {
  if (identity.kind === 'device') {
    const subtree = deviceSubtree(identity.namespace, identity.device);
    return (
      topic.startsWith(subtree) &&
      DEVICE_SUBSCRIBE.includes(topic.slice(subtree.length) as (typeof DEVICE_SUBSCRIBE)[number])
    );
  }
  const prefix = `${PROTOCOL_ROOT}/telemetry/`;
  if (!topic.startsWith(prefix)) return false;
  if (identity.namespaces === '*') return true;
  const namespace = topic.slice(prefix.length).split('/')[0];
  return namespace !== undefined && identity.namespaces.includes(namespace);
}

function unauthorized(message: string): KedgeError {
  return new KedgeError(ErrorCode.Unauthorized, message);
}
