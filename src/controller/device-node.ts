import { buildNode, isDeviceNode, nodeConditions } from '../provider/node.js';
import { DEVICE_REF_ANNOTATION, nodeNameFor } from '../provider/naming.js';
import type { EdgeDevice } from '../crds/index.js';
import type { ControllerContext } from './context.js';
import type { DeviceState } from './device-state.js';
import { isConflict, isNotFound, Resources, type KubeObject } from './kube/client.js';
import { kubeTime, microTime } from './kube/time.js';

/**
 * Node status is rewritten at least this often while nothing changes: the kubelet's
 * nodeStatusReportFrequency (5 min). Liveness is the Lease's job; a 60 s refresh cost a
 * thousand-device fleet 17 writes/s for nothing.
 */
const NODE_STATUS_REFRESH_MS = 5 * 60_000;
/** Lease length and renewal, from the kubelet (renew every 10 s, expire after 40 s). */
export const NODE_LEASE_DURATION_SECS = 40;
export const NODE_LEASE_RENEW_MS = 10_000;
const NODE_LEASE_NAMESPACE = 'kube-node-lease';

const lastStatusWrite = new Map<string, { signature: string; at: number }>();

/** Creates or updates the device's Node: labels, taints, capacity, nodeInfo, conditions. */
export async function ensureNode(
  ctx: ControllerContext,
  device: EdgeDevice & KubeObject,
  state: DeviceState,
): Promise<void> {
  const desired = buildNode(device, state.report?.facts, ctx.kubelet);
  const name = desired.metadata.name;
  let existing =
    ctx.informers.nodes.get(name) ?? (await ctx.client.find<KubeObject>(Resources.nodes, name));
  if (!existing) {
    existing = await ctx.client
      .create<KubeObject>(Resources.nodes, { ...desired, status: undefined })
      .catch(async (err: unknown) => {
        if (!isConflict(err)) throw err;
        return ctx.client.find<KubeObject>(Resources.nodes, name);
      });
  } else if (isDeviceNode(existing, device.metadata.namespace!, device.metadata.name!)) {
    await syncMeta(ctx, existing, desired);
  }
  state.nodeRefusal = existing && nodeRefusal(existing, device);
  if (state.nodeRefusal) {
    ctx.events.record(device, 'Warning', state.nodeRefusal.reason, state.nodeRefusal.message);
    return;
  }
  await writeNodeStatus(ctx, name, desired, state);
}

/** Why kedge must not touch a Node of the device's name: it is not marked as this device's. */
function nodeRefusal(
  node: KubeObject,
  device: EdgeDevice,
): { reason: 'NodeNotOwned'; message: string } | undefined {
  if (isDeviceNode(node, device.metadata.namespace!, device.metadata.name!)) return undefined;
  return {
    reason: 'NodeNotOwned',
    message: `Node ${node.metadata.name} exists but is not this device's (its ${DEVICE_REF_ANNOTATION} annotation is not ${device.metadata.namespace}/${device.metadata.name}); kedge neither changes nor deletes it`,
  };
}

interface Taint {
  key: string;
  value?: string;
  effect: string;
}

/** Taints the node lifecycle controller manages (not-ready, unreachable…); kedge leaves them alone. */
const SYSTEM_TAINT = /^node\.(kubernetes\.io|cloudprovider\.kubernetes\.io)\//;

/** Patches labels and kedge's taints when they drifted, keeping system taints in place. */
async function syncMeta(
  ctx: ControllerContext,
  existing: KubeObject,
  desired: KubeObject,
): Promise<void> {
  const labels = existing.metadata.labels ?? {};
  const labelsDiffer = Object.entries(desired.metadata.labels ?? {}).some(
    ([k, v]) => labels[k] !== v,
  );
  const current = ((existing.spec as { taints?: Taint[] } | undefined)?.taints ?? []).map(
    ({ key, value, effect }) => ({ key, value, effect }),
  );
  const system = current.filter((t) => SYSTEM_TAINT.test(t.key));
  const ours = current.filter((t) => !SYSTEM_TAINT.test(t.key));
  const wanted = (desired.spec as { taints: Taint[] }).taints;
  const taintsDiffer =
    JSON.stringify(ours) !==
    JSON.stringify(wanted.map(({ key, value, effect }) => ({ key, value, effect })));
  if (!labelsDiffer && !taintsDiffer) return;
  const patch = {
    metadata: {
      labels: desired.metadata.labels,
      annotations: desired.metadata.annotations,
      resourceVersion: existing.metadata.resourceVersion,
    },
    ...(taintsDiffer ? { spec: { taints: [...wanted, ...system] } } : {}),
  };
  await ctx.client.patch(Resources.nodes, existing.metadata.name!, patch);
}

async function writeNodeStatus(
  ctx: ControllerContext,
  name: string,
  desired: KubeObject,
  state: DeviceState,
): Promise<void> {
  const conditions = nodeConditions(
    {
      connected: state.connected,
      lastSeen: state.lastSeen?.toISOString(),
      since: state.since ? kubeTime(state.since) : undefined,
    },
    kubeTime(),
    state.pressure,
  );
  const status = { ...(desired.status as object), conditions };
  const signature = JSON.stringify([
    desired.status,
    conditions.map((c) => [c.type, c.status, c.reason]),
  ]);
  const last = lastStatusWrite.get(name);
  if (last && last.signature === signature && Date.now() - last.at < NODE_STATUS_REFRESH_MS) return;
  await ctx.client.patch(Resources.nodes, name, { status }, { subresource: 'status' });
  lastStatusWrite.set(name, { signature, at: Date.now() });
}

/** Removes the device's Node and Lease. */
export async function deleteNode(
  ctx: ControllerContext,
  namespace: string,
  device: string,
): Promise<void> {
  const name = nodeNameFor(namespace, device);
  lastStatusWrite.delete(name);
  const node =
    ctx.informers.nodes.get(name) ?? (await ctx.client.find<KubeObject>(Resources.nodes, name));
  // A Node of this name that kedge did not make for this device is left alone, with its Lease.
  if (node && !isDeviceNode(node, namespace, device)) return;
  if (node)
    await ctx.client.delete(Resources.nodes, name, { preconditions: { uid: node.metadata.uid } });
  await ctx.client.delete(Resources.leases(NODE_LEASE_NAMESPACE), name);
}

/** Renews the node Lease of a connected device (creating it when missing). */
export async function renewLease(ctx: ControllerContext, nodeName: string): Promise<void> {
  const ref = Resources.leases(NODE_LEASE_NAMESPACE);
  const spec = {
    holderIdentity: nodeName,
    leaseDurationSeconds: NODE_LEASE_DURATION_SECS,
    renewTime: microTime(),
  };
  try {
    await ctx.client.patch(ref, nodeName, { spec });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    const node = ctx.informers.nodes.get(nodeName);
    await ctx.client.create(ref, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: nodeName,
        namespace: NODE_LEASE_NAMESPACE,
        ...(node
          ? {
              ownerReferences: [
                { apiVersion: 'v1', kind: 'Node', name: nodeName, uid: node.metadata.uid! },
              ],
            }
          : {}),
      },
      spec,
    });
  }
}
