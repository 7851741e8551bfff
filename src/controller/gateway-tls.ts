/**
 * The gateways' serving certificate, kept in Secret `kedge-gateway-tls` (tls.crt, tls.key,
 * ca.crt) in the controller namespace, so gateways need no Kubernetes access: they mount it.
 * Issued by the controller CA, and issued again when it nears expiry or its names change.
 */
import { X509Certificate } from 'node:crypto';
import type { KeyPair } from '../common/pki.js';
import { servingCertificate } from './certificates.js';
import { isConflict, Resources, type KubeClient, type KubeObject } from './kube/client.js';

export const GATEWAY_TLS_SECRET = 'kedge-gateway-tls';
/** Re-issued when less than this is left; gateways re-read the mounted files well before. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

/** Returns the gateway certificate, issuing or renewing the Secret when needed. */
export async function ensureGatewayTls(
  client: KubeClient,
  namespace: string,
  ca: KeyPair,
  hostNames: string[],
): Promise<KeyPair> {
  const ref = Resources.secrets(namespace);
  const existing = await client.find<SecretObject>(ref, GATEWAY_TLS_SECRET);
  const current = existing && fromSecret(existing);
  if (current && stillGood(current, ca, hostNames)) return current;
  const issued = servingCertificate(ca, 'kedge-gateway', hostNames);
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

function stillGood(pair: KeyPair, ca: KeyPair, hostNames: string[]): boolean {
  const cert = new X509Certificate(pair.certPem);
  const names = cert.subjectAltName ?? '';
  return (
    cert.checkIssued(new X509Certificate(ca.certPem)) &&
    new Date(cert.validTo).getTime() - Date.now() > RENEW_BEFORE_MS &&
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
