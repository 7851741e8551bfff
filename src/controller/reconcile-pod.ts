import type { ModuleReport } from '../common/cloudlink/protocol.js';
import type { EdgeDevice } from '../crds/index.js';
import { ADMITTED_CONDITION, type Refusal } from '../provider/admission.js';
import { deviceForNode } from '../provider/naming.js';
import { podStatusFromModules } from '../provider/pod-status.js';
import type { PodStatus } from '../provider/pod-types.js';
import { podToModules } from '../provider/translate.js';
import { keyFor, type ControllerContext, type PodObject } from './context.js';
import { recentlyWritten, type RecentWrite } from './recent-writes.js';
import { assignModules } from './desired.js';
import { admittedPodsOnDevice } from './device-desired.js';
import { podRefusal } from './pod-admission.js';
import { podLifecycleEvents, pullingEvents } from './pod-events.js';
import type { DeviceState } from './device-state.js';
import { Resources } from './kube/client.js';
import { kubeTime } from './kube/time.js';
import type { ReconcileResult } from './workqueue.js';

/** The status last written for each pod (by key), see {@link recentlyWritten}. */
const recentWrites = new Map<string, RecentWrite>();
/** Pods (by key) whose containers were told to stop, so `Killing` is recorded once. */
const killing = new Set<string>();

/** How often a terminating pod is re-checked while the device stops its modules. */
const DELETION_POLL_MS = 1_000;
/** The pod condition that tells which pod features a device cannot honour. */
export const UNSUPPORTED_CONDITION = 'kedge.io/UnsupportedFeatures';

/** Mirrors device state into a pod bound to a kedge node, and completes its deletion. */
export async function reconcilePod(ctx: ControllerContext, key: string): Promise<ReconcileResult> {
  const pod = ctx.informers.pods.get(key);
  const target = pod?.spec.nodeName ? deviceForNode(pod.spec.nodeName) : undefined;
  if (!pod) {
    recentWrites.delete(key);
    killing.delete(key);
  }
  if (!pod || !target) return {};
  const deviceKey = keyFor(target.namespace, target.device);
  const device = ctx.informers.devices.get(deviceKey);
  const state = ctx.states.peek(deviceKey);
  if (pod.metadata.deletionTimestamp)
    return finishDeletion(ctx, pod, device === undefined ? undefined : state);
  if (!device) return {};
  // A refused pod is told why at once, whether or not its device is online.
  const refusal = podRefusal(ctx, pod, device);
  if (refusal) return writeRefusal(ctx, pod, refusal);
  // While the device is offline the last report stands; the node lifecycle controller marks pods not ready.
  if (!state?.connected) return {};
  return writeStatus(ctx, pod, device, state);
}

/** A refused pod stays Pending with an Admitted=False condition and a Warning Event. */
async function writeRefusal(
  ctx: ControllerContext,
  pod: PodObject,
  refusal: Refusal,
): Promise<ReconcileResult> {
  ctx.events.record(pod, 'Warning', refusal.reason, refusal.message);
  const status: PodStatus = {
    phase: 'Pending',
    reason: refusal.reason,
    message: refusal.message,
    conditions: [
      {
        type: ADMITTED_CONDITION,
        status: 'False',
        reason: refusal.reason,
        message: refusal.message,
        lastTransitionTime: kubeTime(),
      },
    ],
  };
  await patchStatus(ctx, pod, status);
  return {};
}

/**
 * A new pod's first status waits this long for the device to report its modules, so the usual
 * start writes Running once instead of a waiting status first and Running a moment later. The
 * API server already shows such a pod as Pending. Five seconds is the pod-startup SLO: a pod not
 * running by then is shown waiting, with its reason.
 */
export const FIRST_STATUS_DELAY_MS = 5_000;

/** How much longer a pod's first status should wait for the device's report; 0 for now. */
function firstStatusDelay(pod: PodObject, state: DeviceState): number {
  if (pod.status?.containerStatuses?.length) return 0;
  // A module being created (unknown, no reason yet) has nothing to tell either.
  const told = (state.report?.modules ?? []).filter(
    (m) => m.runtimeStatus !== 'unknown' || m.reason !== undefined,
  );
  if (pod.spec.containers.some((c) => told.some((m) => m.name === c.name))) return 0;
  const ageMs = Date.now() - Date.parse(pod.metadata.creationTimestamp ?? '');
  return Number.isNaN(ageMs) ? 0 : Math.max(0, FIRST_STATUS_DELAY_MS - ageMs);
}

/**
 * A terminating pod is force-deleted once the device has applied a desired version without it,
 * when its device is gone, or when the grace period has run out (as virtual-kubelet does).
 */
async function finishDeletion(
  ctx: ControllerContext,
  pod: PodObject,
  state: DeviceState | undefined,
): Promise<ReconcileResult> {
  const removedAt = state?.removals.get(pod.metadata.uid!);
  const applied = removedAt !== undefined && (state?.report?.desiredVersion ?? 0) >= removedAt;
  const graceEnd = Date.parse(pod.metadata.deletionTimestamp!);
  if (state && !applied && Date.now() < graceEnd) {
    recordKilling(ctx, pod);
    ctx.enqueue.desired(keyFor(...deviceOf(pod)));
    return { requeueAfterMs: DELETION_POLL_MS };
  }
  ctx.log.debug({ pod: pod.metadata.name, applied, removedAt }, 'completing pod deletion');
  await ctx.client.delete(Resources.pods(pod.metadata.namespace), pod.metadata.name!, {
    gracePeriodSeconds: 0,
    preconditions: { uid: pod.metadata.uid },
  });
  state?.removals.delete(pod.metadata.uid!);
  return {};
}

function recordKilling(ctx: ControllerContext, pod: PodObject): void {
  const key = keyFor(pod.metadata.namespace, pod.metadata.name);
  if (killing.has(key)) return;
  killing.add(key);
  for (const c of pod.spec.containers)
    ctx.events.record(pod, 'Normal', 'Killing', `Stopping container ${c.name}`);
}

function deviceOf(pod: PodObject): [string, string] {
  const t = deviceForNode(pod.spec.nodeName!)!;
  return [t.namespace, t.device];
}

async function writeStatus(
  ctx: ControllerContext,
  pod: PodObject,
  device: EdgeDevice,
  state: DeviceState,
): Promise<ReconcileResult> {
  const clash = moduleClash(ctx, pod, device);
  if (!clash) tellPulls(ctx, pod, state);
  const unsupported = podToModules(pod, { env: {}, registryCredentials: [] }).unsupported;
  // Something to say already (a clash, ignored features) is said at once.
  const delayMs = clash || unsupported.length > 0 ? 0 : firstStatusDelay(pod, state);
  if (delayMs > 0) return { requeueAfterMs: delayMs };
  const status = clash ? clashStatus(pod, clash) : reportedStatus(ctx, pod, state);
  if (unsupported.length > 0) {
    const message = unsupported.join('; ');
    status.conditions = [
      ...(status.conditions ?? []),
      {
        type: UNSUPPORTED_CONDITION,
        status: 'True',
        reason: 'UnsupportedPodFeatures',
        message,
        lastTransitionTime: kubeTime(),
      },
    ];
    ctx.events.record(pod, 'Warning', 'UnsupportedPodFeatures', message);
  }
  const previous = pod.status;
  if (await patchStatus(ctx, pod, status))
    for (const e of podLifecycleEvents(pod.metadata.name!, previous, status))
      ctx.events.record(pod, e.type, e.reason, e.message);
  return {};
}

/**
 * Writes `status` unless the pod already has it (timestamps aside) or it was just written.
 * Returns whether it wrote.
 */
async function patchStatus(
  ctx: ControllerContext,
  pod: PodObject,
  status: PodStatus,
): Promise<boolean> {
  const signature = statusSignature(status);
  if (statusSignature(pod.status) === signature) return false;
  const key = keyFor(pod.metadata.namespace, pod.metadata.name);
  if (recentlyWritten(recentWrites.get(key), signature)) return false;
  await ctx.client.patch(
    Resources.pods(pod.metadata.namespace),
    pod.metadata.name!,
    // null clears a refusal's reason and message once the pod is admitted.
    { status: { ...status, reason: status.reason ?? null, message: status.message ?? null } },
    { subresource: 'status' },
  );
  recentWrites.set(key, { signature, at: Date.now() });
  return true;
}

function moduleClash(
  ctx: ControllerContext,
  pod: PodObject,
  device: EdgeDevice,
): { module: string; owner: string } | undefined {
  const pods = admittedPodsOnDevice(ctx, device);
  const bound = pods.map((p) => ({ pod: p, env: {}, registryCredentials: [] }));
  return assignModules(bound).clashes.find((c) => c.pod.metadata.uid === pod.metadata.uid);
}

function clashStatus(pod: PodObject, clash: { module: string; owner: string }): PodStatus {
  return {
    phase: 'Failed',
    reason: 'ModuleNameConflict',
    message: `module ${clash.module} already runs on this device for pod ${clash.owner}; container names and module ids must be unique per device`,
    startTime: pod.status?.startTime ?? kubeTime(),
  };
}

/** Records `Pulling` for pulls the device began since the last one told. */
function tellPulls(ctx: ControllerContext, pod: PodObject, state: DeviceState): void {
  const modules = new Map((state.report?.modules ?? []).map((m) => [m.name, m]));
  const containers = pod.spec.containers.map((c) => c.name);
  state.toldPulls ??= new Map();
  for (const e of pullingEvents(containers, modules, state.toldPulls, Date.now()))
    ctx.events.record(pod, e.type, e.reason, e.message);
}

function reportedStatus(ctx: ControllerContext, pod: PodObject, state: DeviceState): PodStatus {
  const modules = new Map<string, ModuleReport>(
    (state.report?.modules ?? []).map((m) => [m.name, m]),
  );
  return podStatusFromModules({
    spec: pod.spec,
    modules,
    hostIP: ctx.kubelet.address,
    startTime: pod.status?.startTime,
    now: kubeTime(),
  });
}

/** A pod status without its timestamps, for comparing what would be written. */
function statusSignature(s: PodStatus | undefined): string {
  return JSON.stringify({
    ...s,
    conditions: (s?.conditions ?? []).map(({ lastTransitionTime: _t, ...c }) => c),
    startTime: undefined,
  });
}
