import { createCa, issueCertificate, type KeyPair } from '../common/pki.js';
import { isConflict, Resources, type KubeClient, type KubeObject } from './kube/client.js';

/** Secret in the controller namespace holding the CA that signs the cloud hub and kubelet API. */
export const CA_SECRET = 'kedge-ca';

/**
 * ConfigMap in the controller namespace with only the CA certificate (`ca.crt`), so enrolling a
 * device needs no access to the CA Secret and its private key.
 */
export const CA_CONFIGMAP = 'kedge-ca';
/** The key of the CA certificate in {@link CA_CONFIGMAP}. */
export const CA_CERT_KEY = 'ca.crt';

type SecretObject = KubeObject & { data?: Record<string, string> };

/** Loads the controller CA from its Secret, creating both on first start. */
export async function ensureControllerCa(client: KubeClient, namespace: string): Promise<KeyPair> {
  const ref = Resources.secrets(namespace);
  const existing = await client.find<SecretObject>(ref, CA_SECRET);
  if (existing?.data?.['ca.crt'] && existing.data['ca.key']) return fromSecret(existing);
  const ca = createCa('kedge-controller-ca');
  const body: SecretObject = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: CA_SECRET, namespace, labels: { 'app.kubernetes.io/part-of': 'kedge' } },
    data: { 'ca.crt': b64(ca.certPem), 'ca.key': b64(ca.keyPem) },
  };
  try {
    await client.create(ref, body);
    return ca;
  } catch (err) {
    // Another replica created it first: use theirs.
    if (!isConflict(err)) throw err;
    return fromSecret((await client.find<SecretObject>(ref, CA_SECRET))!);
  }
}

/** Writes the CA certificate to the {@link CA_CONFIGMAP} ConfigMap when it is missing or differs. */
export async function publishCaCertificate(
  client: KubeClient,
  namespace: string,
  certPem: string,
): Promise<void> {
  const ref = Resources.configMaps(namespace);
  const existing = await client.find<KubeObject & { data?: Record<string, string> }>(
    ref,
    CA_CONFIGMAP,
  );
  const data = { [CA_CERT_KEY]: certPem };
  if (existing?.data?.[CA_CERT_KEY] === certPem) return;
  const metadata = {
    name: CA_CONFIGMAP,
    namespace,
    labels: { 'app.kubernetes.io/part-of': 'kedge' },
  };
  if (existing) {
    await client.patch(ref, CA_CONFIGMAP, { data });
    return;
  }
  await client
    .create(ref, { apiVersion: 'v1', kind: 'ConfigMap', metadata, data })
    .catch((err: unknown) => {
      if (!isConflict(err)) throw err;
    });
}

/** A serving certificate for the cloud hub or kubelet API. */
export function servingCertificate(ca: KeyPair, commonName: string, altNames: string[]): KeyPair {
  return issueCertificate(ca, {
    commonName,
    altNames: [...new Set(['localhost', '127.0.0.1', ...altNames])],
    usage: ['server'],
  });
}

function fromSecret(secret: SecretObject): KeyPair {
  const get = (k: string): string => Buffer.from(secret.data![k]!, 'base64').toString('utf8');
  return { certPem: get('ca.crt'), keyPem: get('ca.key') };
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
