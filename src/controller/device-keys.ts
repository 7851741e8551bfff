import { keyProblem } from '../common/iothub/index.js';
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
  reason:
    | 'KeySecretNotOwned'
    | 'InvalidKey'
    | 'NoKey'
    | 'AuthenticationNotSupported'
    | 'InvalidCACertificate';
  message: string;
}

/**
 * Why the controller gives a device no credentials at all, whatever its Secrets hold: it asks for
 * something kedge does not serve yet. Retrying cannot fix that, only a spec change can.
 */
export function unsupportedIdentity(device: EdgeDevice): KeyRefusal | undefined {
  // A leaf's X.509 is checked by its gateway's hub (leaf-devices.ts); the cloud does not serve it.
  if (device.spec.authentication?.type === 'X509' && !device.spec.parent)
    return {
      reason: 'AuthenticationNotSupported',
      message:
        'X.509 device authentication to the cloud is not supported yet, so the device cannot connect; use spec.authentication.type SymmetricKey (the default). Leaf devices (spec.parent) may use X.509 to their gateway',
    };
  return undefined;
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
