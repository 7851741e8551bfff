/**
 * The gateways' serving certificate, kept in Secret `kedge-gateway-tls` (tls.crt, tls.key,
 * ca.crt) in the controller namespace, so gateways need no Kubernetes access: they mount it.
 * Issued by the controller CA, and issued again when it nears expiry or its names change.
 */
import { X509Certificate } from 'node:crypto';
import type { KeyPair } from '../common/pki.js';
import {
  DEFAULT_RENEW_BEFORE_SECS,
  DEFAULT_SERVING_VALIDITY_SECS,
  servingCertificate,
  type CertificateTiming,
} from './certificates.js';
import { isConflict, Resources, type KubeClient, type KubeObject } from './kube/client.js';

export const GATEWAY_TLS_SECRET = 'kedge-gateway-tls';
/** Longest wait between two checks of the Secret. */
const MAX_CHECK_INTERVAL_MS = 12 * 3600 * 1000;

type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

/** Validity and renewal margin (ms) of the gateway certificate, as for the other serving ones. */
export function gatewayTlsTiming(timing: CertificateTiming = {}): {
  validitySecs: number;
  renewBeforeMs: number;
  checkEveryMs: number;
} {
  const validitySecs = timing.validitySecs ?? DEFAULT_SERVING_VALIDITY_SECS;
  const renewBeforeMs =
    Math.min(timing.renewBeforeSecs ?? DEFAULT_RENEW_BEFORE_SECS, validitySecs / 2) * 1000;
  // Gateways poll the mounted files every few seconds, so a quarter of the margin is plenty.
  const checkEveryMs = Math.max(1_000, Math.min(MAX_CHECK_INTERVAL_MS, renewBeforeMs / 4));
  return { validitySecs, renewBeforeMs, checkEveryMs };
}

/** Returns the gateway certificate, issuing or renewing the Secret when needed. */
export async function ensureGatewayTls(
  client: KubeClient,
  namespace: string,
  ca: KeyPair,
  want: { hostNames: string[]; timing?: CertificateTiming | undefined },
): Promise<KeyPair> {
  const { hostNames } = want;
  const { validitySecs, renewBeforeMs } = gatewayTlsTiming(want.timing);
  const ref = Resources.secrets(namespace);
  const existing = await client.find<SecretObject>(ref, GATEWAY_TLS_SECRET);
  const current = existing && fromSecret(existing);
  if (current && stillGood(current, ca, hostNames, renewBeforeMs)) return current;
  const issued = servingCertificate(ca, 'kedge-gateway', hostNames, validitySecs);
  const body: SecretObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      name: GATEWAY_TLS_SECRET,
      namespace,
      labels: { 'app.kubernetes.io/part-of': 'kedge' },
      ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}),
    },
    data: {
      'tls.crt': b64(issued.certPem),
      'tls.key': b64(issued.keyPem),
      'ca.crt': b64(ca.certPem),
    },
  };
  try {
    if (existing) await client.replace(ref, body);
    else await client.create(ref, body);
    return issued;
  } catch (err) {
    // Another replica wrote it first: use theirs.
    if (!isConflict(err)) throw err;
    return fromSecret((await client.find<SecretObject>(ref, GATEWAY_TLS_SECRET))!)!;
  }
}

function stillGood(
  pair: KeyPair,
  ca: KeyPair,
  hostNames: string[],
  renewBeforeMs: number,
): boolean {
  const cert = new X509Certificate(pair.certPem);
  const names = cert.subjectAltName ?? '';
  return (
    cert.checkIssued(new X509Certificate(ca.certPem)) &&
    new Date(cert.validTo).getTime() - Date.now() > renewBeforeMs &&
    hostNames.every((h) => names.includes(h))
  );
}

function fromSecret(secret: SecretObject): KeyPair | undefined {
  const crt = secret.data?.['tls.crt'];
  const key = secret.data?.['tls.key'];
  if (!crt || !key) return undefined;
  return {
    certPem: Buffer.from(crt, 'base64').toString('utf8'),
    keyPem: Buffer.from(key, 'base64').toString('utf8'),
  };
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
