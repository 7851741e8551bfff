import { randomBytes } from 'node:crypto';
import { leafTwinModule } from '../common/cloudplane/layout.js';
import type { EdgeDevice } from '../crds/index.js';
import { FINALIZER, nodeNameFor } from '../provider/naming.js';
import { keyFor, podsOnNode, splitKey, type ControllerContext } from './context.js';
import {
  DEVICE_KEY_FOR_LABEL,
  ownsSecret,
  readDeviceKeys,
  x509Credentials,
  type SecretObject,
} from './device-keys.js';
import { deleteNode, ensureNode } from './device-node.js';
import { updateDeviceStatus } from './device-status.js';
import type { DeviceState } from './device-state.js';
import { isConflict, Resources, type KubeObject } from './kube/client.js';
import { declaredParent, reconcileLeaf } from './leaf-devices.js';
import type { ReconcileResult } from './workqueue.js';

/** Bytes of a generated device key, as IoT Hub's symmetric keys. */
const DEVICE_KEY_BYTES = 32;
/** Keys are re-read from their Secret this often, so a rotation takes effect. */
const KEY_REFRESH_MS = 30_000;

/** The name of the Secret with a device's key. */
export function keySecretName(device: EdgeDevice): string {
  return (
    device.spec.authentication?.symmetricKey?.secretName ?? `${device.metadata.name}-kedge-key`
  );
}

/**
 * Level-based reconcile of one EdgeDevice: credentials, Node and status. Desired state is pushed
 * by `reconcileDesired`, on a queue of its own.
 */
export async function reconcileDevice(
  ctx: ControllerContext,
  key: string,
): Promise<ReconcileResult> {
  const device = ctx.informers.devices.get(key);
  if (!device) {
    await forget(ctx, key);
    return {};
  }
  if (device.metadata.deletionTimestamp) {
    await finalize(ctx, device);
    return {};
  }
  await ensureFinalizer(ctx, device);
  const state = ctx.states.get(key);
  if (declaredParent(device))
    return reconcileLeaf(ctx, device, state, () => ensureKeys(ctx, device, state));
  await ensureKeys(ctx, device, state);
  await ctx.backend.setCredentials(device.metadata.namespace!, device.metadata.name!, {
    keys: state.keys ?? [],
    ...(state.x509?.thumbprints.length ? { thumbprints: [...state.x509.thumbprints] } : {}),
    ...(state.x509?.caCertificates.length
      ? { caCertificates: [...state.x509.caCertificates] }
      : {}),
  });
  await ensureNode(ctx, device, state);
  const statusWaitMs = await updateDeviceStatus(ctx, device, state, state.desiredModules ?? 0);
  return statusWaitMs > 0 ? { requeueAfterMs: statusWaitMs } : {};
}

async function ensureFinalizer(
  ctx: ControllerContext,
  device: EdgeDevice & KubeObject,
): Promise<void> {
  const finalizers = device.metadata.finalizers ?? [];
  if (finalizers.includes(FINALIZER)) return;
  await ctx.client.patch(Resources.edgeDevices(device.metadata.namespace), device.metadata.name!, {
    metadata: {
      finalizers: [...finalizers, FINALIZER],
      resourceVersion: device.metadata.resourceVersion,
    },
  });
}

/**
 * Loads the device keys from their Secret, generating the Secret when it is missing. A device
 * that asks for an identity kedge does not serve yet gets no keys and a refusal, which the status
 * shows as Ready=False; nothing is retried until its spec changes.
 */
async function ensureKeys(
  ctx: ControllerContext,
  device: EdgeDevice & KubeObject,
  state: DeviceState,
): Promise<void> {
  if (device.spec.authentication?.type === 'X509') return loadCertificates(ctx, device, state);
  state.x509 = undefined;
  const ref = Resources.secrets(device.metadata.namespace);
  const name = keySecretName(device);
  // A Secret labelled for its device is watched: read again only when it changed. Any other is
  // read again every KEY_REFRESH_MS.
  const watched = ctx.informers.keySecrets.get(keyFor(device.metadata.namespace, name));
  const fresh = watched
    ? state.keysSecretVersion === watched.metadata.resourceVersion
    : Date.now() - (state.keysReadAt ?? 0) < KEY_REFRESH_MS;
  if (state.keysReadAt !== undefined && fresh) return;
  let secret = watched ?? (await ctx.client.find<SecretObject>(ref, name));
  if (!secret) {
    secret = await createKeySecret(ctx, device, name);
    ctx.events.record(device, 'Normal', 'KeyGenerated', `generated a device key in Secret ${name}`);
  }
  const read = readDeviceKeys(device, secret);
  state.keysReadAt = Date.now();
  state.keysSecretVersion = secret.metadata.resourceVersion;
  if ('keys' in read) {
    state.keys = read.keys;
    state.keyRefusal = undefined;
    return;
  }
  // No usable key: the hub refuses the device until the Secret is fixed.
  state.keys = undefined;
  state.keyRefusal = read.refusal;
  ctx.events.record(device, 'Warning', read.refusal.reason, read.refusal.message);
}

/** An X.509 device: certificates, not keys, and the EdgeDevice itself says which ones. */
function loadCertificates(
  ctx: ControllerContext,
  device: EdgeDevice & KubeObject,
  state: DeviceState,
): void {
  const x509 = x509Credentials(device);
  state.keys = undefined;
  state.keysReadAt = undefined;
  if ('refusal' in x509) {
    if (state.keyRefusal?.reason !== x509.refusal.reason)
      ctx.events.record(device, 'Warning', x509.refusal.reason, x509.refusal.message);
    state.x509 = undefined;
    state.keyRefusal = x509.refusal;
    return;
  }
  state.x509 = x509;
  state.keyRefusal = undefined;
}

async function createKeySecret(
  ctx: ControllerContext,
  device: EdgeDevice & KubeObject,
  name: string,
): Promise<SecretObject> {
  const key = randomBytes(DEVICE_KEY_BYTES).toString('base64');
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace: device.metadata.namespace,
      // The key-Secret watch selects on DEVICE_KEY_FOR_LABEL, so an edit is read at once.
      labels: {
        'kedge.io/device': device.metadata.name!,
        [DEVICE_KEY_FOR_LABEL]: device.metadata.name!,
      },
      ownerReferences: [
        {
          apiVersion: device.apiVersion,
          kind: device.kind,
          name: device.metadata.name!,
          uid: device.metadata.uid!,
          controller: true,
        },
      ],
    },
    data: { primaryKey: Buffer.from(key).toString('base64') },
  };
  try {
    return await ctx.client.create(Resources.secrets(device.metadata.namespace), body);
  } catch (err) {
    if (!isConflict(err)) throw err;
    return (await ctx.client.find(Resources.secrets(device.metadata.namespace), name))!;
  }
}

/** Deletion: Node and Lease go, credentials are revoked, then the finalizer is released. */
async function finalize(ctx: ControllerContext, device: EdgeDevice & KubeObject): Promise<void> {
  const { namespace, name } = {
    namespace: device.metadata.namespace!,
    name: device.metadata.name!,
  };
  await forget(ctx, keyFor(namespace, name));
  // A leaf's twin is kept beside its parent's module twins.
  const parent = declaredParent(device);
  if (parent) await ctx.backend.forgetTwin(namespace, parent, leafTwinModule(name));
  await deleteOwnedKeySecret(ctx, device);
  const finalizers = (device.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
  if (finalizers.length === (device.metadata.finalizers ?? []).length) return;
  await ctx.client.patch(Resources.edgeDevices(namespace), name, {
    metadata: { finalizers, resourceVersion: device.metadata.resourceVersion },
  });
}

/** Deletes the key Secret only when the device owns it: `secretName` may name any Secret. */
async function deleteOwnedKeySecret(
  ctx: ControllerContext,
  device: EdgeDevice & KubeObject,
): Promise<void> {
  const ref = Resources.secrets(device.metadata.namespace);
  const secret = await ctx.client.find<SecretObject>(ref, keySecretName(device));
  if (!secret || !ownsSecret(device, secret)) return;
  await ctx.client.delete(ref, secret.metadata.name!, {
    preconditions: { uid: secret.metadata.uid },
  });
}

async function forget(ctx: ControllerContext, key: string): Promise<void> {
  const { namespace, name } = splitKey(key);
  ctx.states.delete(key);
  await ctx.backend.forgetDevice(namespace, name);
  await deleteNode(ctx, namespace, name);
  for (const pod of podsOnNode(ctx, nodeNameFor(namespace, name))) {
    ctx.enqueue.pod(keyFor(pod.metadata.namespace, pod.metadata.name));
  }
}
