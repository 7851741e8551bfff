import { X509Certificate } from 'node:crypto';
import type { SecureContextOptions, Server as TlsServer } from 'node:tls';
import { ErrorCode, KedgeError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
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

/** How long serving certificates live and when they are renewed. */
export interface CertificateTiming {
  /** Validity of each serving certificate, seconds. Defaults to one year. */
  validitySecs?: number;
  /** Renew this long before expiry, seconds. Defaults to 30 days (at most half the validity). */
  renewBeforeSecs?: number;
}

/** A year: long enough that a renewal problem shows in metrics and logs long before expiry. */
export const DEFAULT_SERVING_VALIDITY_SECS = 365 * 24 * 3600;
/** A month of margin to notice and fix a failing renewal. */
export const DEFAULT_RENEW_BEFORE_SECS = 30 * 24 * 3600;
/** setTimeout holds at most 2^31-1 ms (24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Never renew more often than this, whatever the timing asks. */
const MIN_RENEW_INTERVAL_MS = 1_000;

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

/** A serving certificate for the cloud hub, the kubelet API or the service API. */
export function servingCertificate(
  ca: KeyPair,
  commonName: string,
  altNames: string[],
  validitySecs?: number,
): KeyPair {
  return issueCertificate(ca, {
    commonName,
    altNames: [...new Set(['localhost', '127.0.0.1', ...altNames])],
    usage: ['server'],
    ...(validitySecs === undefined ? {} : { validitySecs }),
  });
}

/** A serving certificate that replaces itself before it expires. */
export interface RenewingCertificate {
  /** The certificate in use now. */
  readonly current: KeyPair;
  /**
   * Keeps `server` on the current certificate: each renewal calls `setSecureContext` with the new
   * pair plus `extra` (for example the client CA), so new handshakes get it and open connections
   * stay as they are.
   */
  serve(server: TlsServer, extra?: SecureContextOptions): void;
  /** Calls `listener` with each new certificate (for servers that are not a tls.Server). */
  onRenew(listener: (pair: KeyPair) => void): void;
  stop(): void;
}

/**
 * Issues a serving certificate from `ca` and renews it `renewBeforeSecs` before it expires, for as
 * long as the process runs. Any TLS server the controller or the gateway runs can adopt it.
 */
export function renewingCertificate(
  ca: KeyPair,
  subject: { commonName: string; altNames: string[] },
  timing: CertificateTiming = {},
  log?: Logger,
): RenewingCertificate {
  const validitySecs = timing.validitySecs ?? DEFAULT_SERVING_VALIDITY_SECS;
  const renewBeforeSecs = Math.min(
    timing.renewBeforeSecs ?? DEFAULT_RENEW_BEFORE_SECS,
    validitySecs / 2,
  );
  if (!(validitySecs > 0) || !(renewBeforeSecs >= 0))
    throw new KedgeError(
      ErrorCode.InvalidConfig,
      `certificate validity must be over 0 s and renew-before at least 0 s, got ${timing.validitySecs} and ${timing.renewBeforeSecs}`,
    );
  const issue = (): KeyPair =>
    servingCertificate(ca, subject.commonName, subject.altNames, validitySecs);
  let current = issue();
  const listeners: ((pair: KeyPair) => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    const renewAtMs =
      Date.parse(new X509Certificate(current.certPem).validTo) - renewBeforeSecs * 1000;
    const waitMs = Math.max(renewAtMs - Date.now(), MIN_RENEW_INTERVAL_MS);
    timer = setTimeout(
      () => {
        if (waitMs > MAX_TIMER_MS) return schedule();
        current = issue();
        log?.info(
          { commonName: subject.commonName, validTo: new X509Certificate(current.certPem).validTo },
          'serving certificate renewed',
        );
        for (const listener of listeners) listener(current);
        schedule();
      },
      Math.min(waitMs, MAX_TIMER_MS),
    );
    timer.unref();
  };
  schedule();
  return {
    get current() {
      return current;
    },
    serve(server, extra = {}) {
      listeners.push((pair) =>
        server.setSecureContext({ ...extra, cert: pair.certPem, key: pair.keyPem }),
      );
    },
    onRenew(listener) {
      listeners.push(listener);
    },
    stop() {
      clearTimeout(timer);
    },
  };
}

function fromSecret(secret: SecretObject): KeyPair {
  const get = (k: string): string => Buffer.from(secret.data![k]!, 'base64').toString('utf8');
  return { certPem: get('ca.crt'), keyPem: get('ca.key') };
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
