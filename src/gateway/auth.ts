import {
  deviceResourceUri,
  deviceSubtree,
  DOWNSTREAM_LEAVES,
  Leaf,
} from '../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError } from '../common/errors.js';
import type { CredentialsRecord } from '../common/cloudplane/layout.js';
import { verifySasToken } from '../common/iothub/index.js';
import { verifyClientChain } from '../common/x509-identity.js';

/** Who is on the other end of a gateway connection: a device, with its token's expiry. */
export interface CloudIdentity {
  namespace: string;
  device: string;
  /** When the SAS token the device connected with expires, Unix seconds. */
  expirySecs: number;
}

/** What a device proved itself with: a SAS token, or a TLS client certificate chain (DER). */
export type Proof = { token: string } | { chain: Buffer[] };

/** Looks up the current credentials of a device; undefined if unknown. */
export type CredentialsLookup = (
  namespace: string,
  device: string,
) => CredentialsRecord | undefined;

/**
 * Authenticates a CONNECT: username `<namespace>/<device>`, and a SAS token as password or, with
 * no password, the TLS client certificate the device presented (X.509).
 */
export function authenticate(
  username: string | undefined,
  proof: Proof | undefined,
  credentials: CredentialsLookup,
): CloudIdentity {
  if (!username || !proof)
    throw unauthorized('a username and a password or client certificate are required');
  const [namespace, device, ...rest] = username.split('/');
  if (!namespace || !device || rest.length > 0)
    throw unauthorized('username must be <namespace>/<device>');
  const who = { namespace, device };
  const expirySecs = verifyProof(who, proof, credentials(namespace, device));
  return { ...who, expirySecs };
}

/**
 * Checks a proof against a device's credentials (at connect, and again when they change); returns
 * when it stops being valid, Unix seconds. Throws `KEDGE_ERR_UNAUTHORIZED`.
 */
export function verifyProof(
  who: { namespace: string; device: string },
  proof: Proof,
  record: CredentialsRecord | undefined,
): number {
  if ('chain' in proof) {
    const cert = verifyClientChain(who.device, proof.chain, {
      thumbprints: record?.thumbprints ?? [],
      caCertificates: record?.caCertificates ?? [],
    });
    return Math.floor(Date.parse(cert.validTo) / 1000);
  }
  if (!record?.keys.length) throw unauthorized(`unknown device ${who.namespace}/${who.device}`);
  return verifySasToken(proof.token, {
    audiences: [deviceResourceUri(who.namespace, who.device)],
    keysBase64: record.keys,
  }).expirySecs;
}

/** Leaves a device may publish to, under its own subtree. */
const DEVICE_PUBLISH = [
  Leaf.reported,
  Leaf.heartbeat,
  Leaf.usage,
  Leaf.telemetry,
  Leaf.twinReported,
  Leaf.streamUp,
];
const DEVICE_PUBLISH_PREFIXES = [
  `${Leaf.logData}/`,
  `${Leaf.logEnd}/`,
  `${Leaf.methodResponse}/`,
  `${Leaf.c2dAck}/`,
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
  return topic.startsWith(subtree) && DOWNSTREAM_LEAVES.includes(topic.slice(subtree.length));
}

function unauthorized(message: string): KedgeError {
  return new KedgeError(ErrorCode.Unauthorized, message);
}
