import { keyProblem } from '../common/iothub/index.js';
import { caCertificateProblem } from '../common/x509-identity.js';
import type { EdgeDevice } from '../crds/index.js';
import type { KubeObject } from './kube/client.js';

/**
 * Label that lets a Secret the controller did not create serve as a device's key: its value is
 * the device name. Without it, naming any Secret in `secretName` would adopt it as a key (and
 * delete it with the device).
 */
export const DEVICE_KEY_FOR_LABEL = 'kedge.io/device-key-for';

/** A Secret as the key handling reads it. */
export type SecretObject = KubeObject & { data?: Record<string, string> };

/** Why a device's key cannot be used: the Ready=False reason and message. */
export interface KeyRefusal {
  reason: 'KeySecretNotOwned' | 'InvalidKey' | 'NoKey' | 'InvalidCACertificate';
  message: string;
}

/** The X.509 certificates an EdgeDevice accepts, or why its `x509` cannot be used. */
export function x509Credentials(
  device: EdgeDevice,
): { thumbprints: string[]; caCertificates: string[] } | { refusal: KeyRefusal } {
  const { thumbprint, caCertificate } = device.spec.authentication?.x509 ?? {};
  if (thumbprint) return { thumbprints: [thumbprint.toLowerCase()], caCertificates: [] };
  const problem = caCertificate ? caCertificateProblem(caCertificate) : 'is missing';
  if (problem)
    return {
      refusal: {
        reason: 'InvalidCACertificate',
        message: `authentication.x509.caCertificate ${problem}`,
      },
    };
  return { thumbprints: [], caCertificates: [caCertificate!] };
}

/** What a device's Credentials condition says when it can authenticate. */
export function credentialsAccepted(device: EdgeDevice): { reason: string; message: string } {
  const auth = device.spec.authentication;
  const where = device.spec.parent ? "the gateway's hub accepts" : 'the gateways accept';
  if (auth?.type !== 'X509') return { reason: 'KeyLoaded', message: 'the device key is usable' };
  if (auth.x509?.caCertificate)
    return {
      reason: 'X509CASigned',
      message: `${where} a client certificate signed by the declared CA with subject CN ${device.metadata.name!}`,
    };
  return {
    reason: 'X509Thumbprint',
    message: `${where} a client certificate with the declared SHA-256 thumbprint`,
  };
}

/** Whether the EdgeDevice owns the Secret (an owner reference with its uid). */
export function ownsSecret(device: EdgeDevice & KubeObject, secret: KubeObject): boolean {
  const uid = device.metadata.uid;
  return uid !== undefined && (secret.metadata.ownerReferences ?? []).some((r) => r.uid === uid);
}

/**
 * The device's keys (base64 text) from its Secret, or why they cannot be used: the Secret must be
 * owned by the device or labelled for it, and every key present must be strict base64 of at
 * least 16 bytes.
 */
export function readDeviceKeys(
  device: EdgeDevice & KubeObject,
  secret: SecretObject,
): { keys: string[] } | { refusal: KeyRefusal } {
  const name = secret.metadata.name ?? '';
  const labelled = secret.metadata.labels?.[DEVICE_KEY_FOR_LABEL] === device.metadata.name;
  if (!ownsSecret(device, secret) && !labelled) {
    return {
      refusal: {
        reason: 'KeySecretNotOwned',
        message: `Secret ${name} was not created for this device; label it ${DEVICE_KEY_FOR_LABEL}=${device.metadata.name} to use it as the device key`,
      },
    };
  }
  const keys: string[] = [];
  for (const field of ['primaryKey', 'secondaryKey']) {
    const raw = secret.data?.[field];
    if (raw === undefined) continue;
    const key = Buffer.from(raw, 'base64').toString('utf8').trim();
    const problem = keyProblem(key);
    if (problem)
      return { refusal: { reason: 'InvalidKey', message: `Secret ${name} ${field}: ${problem}` } };
    keys.push(key);
  }
  if (keys.length === 0)
    return { refusal: { reason: 'NoKey', message: `Secret ${name} has no primaryKey` } };
  return { keys };
}
