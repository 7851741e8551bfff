/**
 * Leaf devices: EdgeDevices whose `spec.parent` names a gateway EdgeDevice in the same namespace.
 * A leaf gets a key Secret like any device (or names an X.509 thumbprint) but no Node, no pods
 * and no cloud credentials: it connects to its parent's hub, never to the cloud. Its identity
 * travels to the parent inside the parent's desired state (see {@link leafIdentitiesOf}), and its
 * status says which parent it is under and whether that parent reports it connected.
 */
import type { LeafIdentity } from '../common/cloudlink/protocol.js';
import type { EdgeDevice, EdgeDeviceStatus } from '../crds/index.js';
import { keyFor, type ControllerContext } from './context.js';
import { mergeConditions, sameConditions, type ConditionInput } from './conditions.js';
import { credentialsAccepted, x509Credentials } from './device-keys.js';
import { deleteNode } from './device-node.js';
import type { DeviceState } from './device-state.js';
import { Resources, type KubeObject } from './kube/client.js';
import { kubeTime } from './kube/time.js';
import { nodeNameFor } from '../provider/naming.js';
import type { ReconcileResult } from './workqueue.js';

/** Why a leaf's parent cannot serve it: the Parent condition's reason and message. */
export interface ParentProblem {
  reason: 'ParentNotFound' | 'ParentIsLeaf' | 'ParentDeleting';
  message: string;
}

/** The parent a device declares, or undefined for a gateway (a device with its own Node). */
export function declaredParent(device: EdgeDevice): string | undefined {
  return device.spec.parent || undefined;
}

/** What is wrong with a leaf's parent, or undefined when it can serve the leaf. */
export function parentProblem(
  ctx: ControllerContext,
  device: EdgeDevice,
): ParentProblem | undefined {
  const name = declaredParent(device);
  if (!name) return undefined;
  const parent = ctx.informers.devices.get(keyFor(device.metadata.namespace, name));
  if (!parent)
    return {
      reason: 'ParentNotFound',
      message: `gateway EdgeDevice ${name} does not exist in namespace ${device.metadata.namespace}`,
    };
  if (parent.metadata.deletionTimestamp)
    return { reason: 'ParentDeleting', message: `gateway EdgeDevice ${name} is being deleted` };
  if (declaredParent(parent))
    return {
      reason: 'ParentIsLeaf',
      message: `EdgeDevice ${name} is itself a leaf (of ${parent.spec.parent}); a leaf's parent must be a gateway device`,
    };
  return undefined;
}

/** The live (not deleting) leaves that name `parent` in its namespace, sorted by name. */
export function leavesOf(ctx: ControllerContext, parent: EdgeDevice): (EdgeDevice & KubeObject)[] {
  const ns = parent.metadata.namespace;
  return ctx.informers.devices
    .list()
    .filter(
      (d) =>
        d.metadata.namespace === ns &&
        d.spec.parent === parent.metadata.name &&
        !d.metadata.deletionTimestamp,
    )
    .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
}

/** A leaf's identity as its parent's hub checks it; undefined while it has no usable one. */
export function leafIdentity(
  device: EdgeDevice,
  state: DeviceState | undefined,
): LeafIdentity | undefined {
  const deviceId = device.metadata.name!;
  const auth = device.spec.authentication;
  if (auth?.type !== 'X509')
    return state?.keys?.length ? { deviceId, keys: [...state.keys] } : undefined;
  const x509 = x509Credentials(device);
  if ('refusal' in x509) return undefined;
  return x509.thumbprints.length
    ? { deviceId, thumbprints: x509.thumbprints }
    : { deviceId, caCertificates: x509.caCertificates };
}

/**
 * The leaf identities a gateway's hub gets with its desired state: every live leaf naming it
 * that has a usable key or thumbprint. A gateway that is itself a leaf serves none.
 */
export function leafIdentitiesOf(ctx: ControllerContext, parent: EdgeDevice): LeafIdentity[] {
  if (declaredParent(parent) || parent.metadata.deletionTimestamp) return [];
  const identities: LeafIdentity[] = [];
  for (const leaf of leavesOf(ctx, parent)) {
    const identity = leafIdentity(
      leaf,
      ctx.states.peek(keyFor(leaf.metadata.namespace, leaf.metadata.name)),
    );
    if (identity) identities.push(identity);
  }
  return identities;
}

/** Reconciles a leaf: credentials, no Node, parent re-push on change, status. */
export async function reconcileLeaf(
  ctx: ControllerContext,
  device: EdgeDevice & KubeObject,
  state: DeviceState,
  loadKeys: () => Promise<void>,
): Promise<ReconcileResult> {
  const namespace = device.metadata.namespace!;
  const name = device.metadata.name!;
  if (device.spec.authentication?.type === 'X509') {
    state.keys = undefined;
    const x509 = x509Credentials(device);
    state.keyRefusal = 'refusal' in x509 ? x509.refusal : undefined;
  } else await loadKeys();
  // A leaf never holds a cloud link: its key must not open one, nor may a Node stay behind.
  await ctx.backend.setCredentials(namespace, name, { keys: [] });
  if (ctx.backend.isConnected(namespace, name)) await ctx.backend.disconnect(namespace, name);
  // A device that was a gateway before it named a parent loses its Node.
  if (ctx.informers.nodes.get(nodeNameFor(namespace, name))) await deleteNode(ctx, namespace, name);
  syncToParent(ctx, device, state);
  await writeLeafStatus(ctx, device, state, parentProblem(ctx, device));
  return {};
}

/** Re-pushes the desired state of each parent whose view of this leaf changed. */
function syncToParent(ctx: ControllerContext, device: EdgeDevice, state: DeviceState): void {
  const parent = declaredParent(device)!;
  const signature = JSON.stringify(leafIdentity(device, state) ?? null);
  const before = state.leaf;
  if (before?.parent === parent && before.signature === signature) return;
  ctx.enqueue.desired(keyFor(device.metadata.namespace, parent));
  if (before && before.parent !== parent)
    ctx.enqueue.desired(keyFor(device.metadata.namespace, before.parent));
  state.leaf = { connected: false, ...before, parent, signature };
}

/** Whether the parent reports the leaf connected to its hub now. */
function connectedThroughParent(ctx: ControllerContext, device: EdgeDevice): boolean {
  const parent = ctx.states.peek(keyFor(device.metadata.namespace, declaredParent(device)));
  return (
    parent?.connected === true && (parent.report?.leaves ?? []).includes(device.metadata.name!)
  );
}

/** Writes the leaf's status when it changed. */
async function writeLeafStatus(
  ctx: ControllerContext,
  device: EdgeDevice,
  state: DeviceState,
  problem: ParentProblem | undefined,
): Promise<void> {
  const leaf = state.leaf!;
  const connected = !problem && connectedThroughParent(ctx, device);
  if (connected !== leaf.connected) {
    leaf.connected = connected;
    leaf.since = new Date();
  }
  const status = leafStatus(device, state, problem);
  if (sameLeafStatus(device.status, status)) return;
  await ctx.client.patch(
    Resources.edgeDevices(device.metadata.namespace),
    device.metadata.name!,
    // `null` removes the gateway-only fields a device that became a leaf still carries.
    { status: { ...GATEWAY_ONLY_FIELDS, ...status } },
    { subresource: 'status' },
  );
}

/** Whether a status already says what `after` says, gateway-only fields absent. */
function sameLeafStatus(before: EdgeDeviceStatus | undefined, after: EdgeDeviceStatus): boolean {
  if (!before || !sameConditions(before.conditions, after.conditions)) return false;
  const pick = (s: EdgeDeviceStatus): unknown[] => [
    s.observedGeneration,
    s.phase,
    s.parent,
    s.connectedSince,
    ...Object.keys(GATEWAY_ONLY_FIELDS)
      .filter((k) => k !== 'connectedSince')
      .map((k) => (s as Record<string, unknown>)[k]),
  ];
  return JSON.stringify(pick(before)) === JSON.stringify(pick(after));
}

const GATEWAY_ONLY_FIELDS = {
  nodeName: null,
  moduleSummary: null,
  modules: null,
  desiredVersion: null,
  appliedVersion: null,
  lastSeen: null,
  connectedSince: null,
};

/** The status of a leaf: phase, parent and conditions. */
export function leafStatus(
  device: EdgeDevice,
  state: DeviceState,
  problem: ParentProblem | undefined,
): EdgeDeviceStatus {
  const connected = state.leaf?.connected === true;
  const conditions = leafConditions(device, state, problem);
  return {
    observedGeneration: device.metadata.generation,
    phase: leafPhase(device, connected),
    ...(problem ? {} : { parent: declaredParent(device) }),
    ...(connected && state.leaf?.since ? { connectedSince: kubeTime(state.leaf.since) } : {}),
    conditions: mergeConditions(
      device.status?.conditions?.filter((c) => !GATEWAY_CONDITIONS.has(c.type)),
      conditions,
      device.metadata.generation,
    ),
  };
}

/** Connected; Disconnected once it has been connected; Pending before. */
function leafPhase(device: EdgeDevice, connected: boolean): EdgeDeviceStatus['phase'] {
  if (connected) return 'Connected';
  const wasSeen = device.status?.phase === 'Connected' || device.status?.phase === 'Disconnected';
  return wasSeen ? 'Disconnected' : 'Pending';
}

/** Conditions a gateway has and a leaf does not. */
const GATEWAY_CONDITIONS = new Set(['NodeOwned', 'ModulesHealthy']);

function leafConditions(
  device: EdgeDevice,
  state: DeviceState,
  problem: ParentProblem | undefined,
): ConditionInput[] {
  const parentName = declaredParent(device)!;
  const parent: ConditionInput = problem
    ? { type: 'Parent', status: 'False', ...problem }
    : {
        type: 'Parent',
        status: 'True',
        reason: 'ParentFound',
        message: `connects through the hub of gateway ${parentName}`,
      };
  const credentials: ConditionInput = state.keyRefusal
    ? { type: 'Credentials', status: 'False', ...state.keyRefusal }
    : { type: 'Credentials', status: 'True', ...credentialsAccepted(device) };
  const connected: ConditionInput = state.leaf?.connected
    ? {
        type: 'Connected',
        status: 'True',
        reason: 'ConnectedThroughParent',
        message: `connected to the hub of ${parentName}`,
      }
    : {
        type: 'Connected',
        status: 'False',
        reason: 'NotConnected',
        message: `${parentName} does not report this leaf connected to its hub`,
      };
  const cause = [parent, credentials, connected].find((c) => c.status !== 'True') ?? connected;
  const ready: ConditionInput = {
    type: 'Ready',
    status: cause.status === 'True' ? 'True' : 'False',
    reason: cause.reason,
    message: cause.message,
  };
  return [ready, parent, credentials, connected];
}

/** Leaf EdgeDevices of a parent that must look again (its presence or report changed). */
export function enqueueLeavesOf(ctx: ControllerContext, namespace: string, parent: string): void {
  for (const leaf of ctx.informers.devices.list())
    if (leaf.metadata.namespace === namespace && leaf.spec.parent === parent)
      ctx.enqueue.device(keyFor(namespace, leaf.metadata.name));
}

/**
 * For a service-API request naming a leaf EdgeDevice: its parent, whose hub reaches the leaf, or
 * why it cannot. Undefined for a gateway or an unknown device (the request goes to it as named).
 */
export function leafParentOf(
  ctx: ControllerContext,
  namespace: string,
  name: string,
): { parent: string; problem?: string } | undefined {
  const device = ctx.informers.devices.get(keyFor(namespace, name));
  const parent = device && declaredParent(device);
  if (!parent) return undefined;
  const problem = parentProblem(ctx, device);
  return { parent, ...(problem ? { problem: `leaf device ${name}: ${problem.message}` } : {}) };
}
