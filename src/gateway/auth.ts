import { deviceResourceUri, deviceSubtree, Leaf } from '../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { verifySasToken } from '../common/iothub/index.js';

/** Who is on the other end of a gateway connection: a device, with its token's expiry. */
export interface CloudIdentity {
  namespace: string;
  device: string;
  /** When the SAS token the device connected with expires, Unix seconds. */
  expirySecs: number;
}

/** Looks up the current keys of a device (primary, secondary), base64; undefined if unknown. */
export type DeviceKeyLookup = (namespace: string, device: string) => string[] | undefined;

/** Authenticates a CONNECT: username `<namespace>/<device>`, password a SAS token. */
export function authenticate(
  username: string | undefined,
  password: Buffer | undefined,
  keys: DeviceKeyLookup,
): CloudIdentity {
  if (!username || !password) throw unauthorized('username and password are required');
  const [namespace, device, ...rest] = username.split('/');
  if (!namespace || !device || rest.length > 0)
    throw unauthorized('username must be <namespace>/<device>');
  const deviceKeys = keys(namespace, device);
  if (!deviceKeys?.length) throw unauthorized(`unknown device ${namespace}/${device}`);
  const token = verifySasToken(password.toString('utf8'), {
    audiences: [deviceResourceUri(namespace, device)],
    keysBase64: deviceKeys,
  });
  return { namespace, device, expirySecs: token.expirySecs };
}

/** Leaves a device may publish to, under its own subtree. */
const DEVICE_PUBLISH = [
  Leaf.reported,
  Leaf.heartbeat,
  Leaf.usage,
  Leaf.telemetry,
  Leaf.twinReported,
];
const DEVICE_PUBLISH_PREFIXES = [
  `${Leaf.logData}/`,
  `${Leaf.logEnd}/`,
  `${Leaf.methodResponse}/`,
  `${Leaf.c2dAck}/`,
];
/** Leaves a device may subscribe to. */
const DEVICE_SUBSCRIBE = [
  Leaf.desired,
  Leaf.logRequest,
  Leaf.logCancel,
  Leaf.methodRequest,
  Leaf.c2d,
];

export function mayPublish(identity: CloudIdentity, topic: string): boolean {
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
  const subtree = deviceSubtree(identity.namespace, identity.device);
  return (
    topic.startsWith(subtree) &&
    DEVICE_SUBSCRIBE.includes(topic.slice(subtree.length) as (typeof DEVICE_SUBSCRIBE)[number])
  );
}

function unauthorized(message: string): KedgeError {
  return new KedgeError(ErrorCode.Unauthorized, message);
}
