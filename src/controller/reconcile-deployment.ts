import type { ModuleReport } from '../common/cloudlink/protocol.js';
import type {
  EdgeDeployment,
  EdgeDeploymentStatus,
  EdgeDevice,
  FailingDevice,
} from '../crds/index.js';
import { deviceForNode, Labels, nodeNameFor } from '../provider/naming.js';
import { keyFor, type ControllerContext, type PodObject } from './context.js';
import { mergeConditions, sameConditions, type ConditionInput } from './conditions.js';
import { desiredModulePod, liveAnnotations, SPEC_HASH_ANNOTATION } from './deployment-pods.js';
import { deploymentsFor } from './device-desired.js';
import { isConflict, isNotFound, Resources, type KubeObject } from './kube/client.js';
import { resolveLayers, withLayeredProperties, type LostClaim } from './layering.js';
import { matchesSelector } from './selector.js';
import { routeText } from './desired.js';
import { routeError } from './reconcile-route.js';
import { slowStartBatch } from './slow-start.js';
import type { ReconcileResult } from './workqueue.js';

/** Bounded status lists, so one deployment over a large fleet keeps a small object. */
const MAX_STATUS_ENTRIES = 20;
/** While pods are being replaced the deployment is looked at again this soon. */
const REPLACE_POLL_MS = 1_000;
/**
 * Pods of one deployment that may be starting at once. Creating a whole fleet's pods up front
 * only moves the wait from "not created" to "created, not Running" while the API server works
 * through their status writes; with a bound, each pod starts within seconds of its creation.
 * 256 keeps the pipeline full (a start takes about a second end to end) on a small API server.
 */
export const MAX_STARTING_PODS = 256;
/** A pod stops counting as starting after this long (image pulls, failures), so none can stall a rollout. */
const STARTING_WINDOW_MS = 30_000;

type Dep = EdgeDeployment & KubeObject;

/** Level-based reconcile of one EdgeDeployment: module pods per targeted device, then status. */
export async function reconcileDeployment(
  ctx: ControllerContext,
  key: string,
): Promise<ReconcileResult> {
  const deployment = ctx.informers.deployments.get(key);
  if (!deployment || deployment.metadata.deletionTimestamp) return {};
  const devices = ctx.informers.devices
    .list()
    .filter(
      (d) =>
        d.metadata.namespace === deployment.metadata.namespace &&
        !d.metadata.deletionTimestamp &&
        matchesSelector(deployment.spec.selector, d.metadata.labels),
    );
  const desired = new Map<string, KubeObject>();
  const lost: (LostClaim & { device: string })[] = [];
  for (const device of devices) {
    const layers = deploymentsFor(ctx, device);
    const { winners, lost: lostHere } = resolveLayers(layers);
    for (const claim of winners.values()) {
      if (claim.deployment.metadata.uid !== deployment.metadata.uid) continue;
      const pod = desiredModulePod(
        deployment,
        withLayeredProperties(claim, layers),
        device.metadata.name!,
        nodeNameFor(device.metadata.namespace!, device.metadata.name!),
      );
      desired.set(pod.metadata.name!, pod);
    }
    lost.push(
      ...lostHere
        .filter((l) => l.deployment === deployment.metadata.name)
        .map((l) => ({ ...l, device: device.metadata.name! })),
    );
  }
  const pending = await syncPods(ctx, deployment, desired);
  await writeStatus(ctx, deployment, { devices, desired, lost });
  return pending ? { requeueAfterMs: REPLACE_POLL_MS } : {};
}

/**
 * What syncPods must do: pods to delete, pods to create, pods whose live annotations (desired
 * properties) change in place, and whether a replacement waits.
 */
export interface PodPlan {
  doomed: string[];
  missing: KubeObject[];
  refreshed: { name: string; annotations: Record<string, string | null> }[];
  pending: boolean;
}

/** The live annotations `want` sets that `pod` does not carry yet, or undefined when none differ. */
function liveChange(pod: PodObject, want: KubeObject): Record<string, string | null> | undefined {
  const next = liveAnnotations(want);
  const differs = Object.entries(next).some(
    ([k, v]) => (pod.metadata.annotations?.[k] ?? null) !== v,
  );
  return differs ? next : undefined;
}

/** Compares the deployment's pods with the wanted ones (by name and spec hash). */
export function planPods(owned: PodObject[], desired: Map<string, KubeObject>): PodPlan {
  const existing = new Map(owned.map((p) => [p.metadata.name!, p]));
  const plan: PodPlan = { doomed: [], missing: [], refreshed: [], pending: false };
  for (const pod of owned) planOwnedPod(plan, pod, desired.get(pod.metadata.name!));
  for (const [name, pod] of desired) {
    const current = existing.get(name);
    if (current) plan.pending ||= !!current.metadata.deletionTimestamp;
    else plan.missing.push(pod);
  }
  return plan;
}

/** Adds what one existing pod needs to `plan`: nothing, deletion, or a live annotation patch. */
function planOwnedPod(plan: PodPlan, pod: PodObject, want: KubeObject | undefined): void {
  const terminating = !!pod.metadata.deletionTimestamp;
  const outdated =
    !!want &&
    want.metadata.annotations?.[SPEC_HASH_ANNOTATION] !==
      pod.metadata.annotations?.[SPEC_HASH_ANNOTATION];
  if ((!want || outdated) && !terminating) plan.doomed.push(pod.metadata.name!);
  if (outdated) plan.pending = true;
  if (!want || outdated || terminating) return;
  const live = liveChange(pod, want);
  if (live) plan.refreshed.push({ name: pod.metadata.name!, annotations: live });
}

/**
 * Creates missing pods, deletes unwanted or outdated ones; true while a replacement waits or
 * pods are held back. Writes go out in slow-start batches, so a fleet's pods are created in
 * parallel, and at most {@link MAX_STARTING_PODS} are starting at once.
 */
async function syncPods(
  ctx: ControllerContext,
  deployment: Dep,
  desired: Map<string, KubeObject>,
): Promise<boolean> {
  const ns = deployment.metadata.namespace!;
  const owned = ctx.informers.pods
    .list()
    .filter(
      (p) =>
        p.metadata.namespace === ns &&
        p.metadata.ownerReferences?.some((o) => o.uid === deployment.metadata.uid),
    );
  const plan = planPods(owned, desired);
  await slowStartBatch(plan.doomed, (name) => ctx.client.delete(Resources.pods(ns), name));
  // A desired-properties change keeps the pod: the device gets it as a twin patch (ADR 0019).
  await slowStartBatch(plan.refreshed, async ({ name, annotations }) => {
    await ctx.client
      .patch(Resources.pods(ns), name, { metadata: { annotations } })
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  });
  const room = Math.max(0, MAX_STARTING_PODS - startingPods(ctx, owned));
  if (plan.missing.length > room) plan.pending = true;
  await slowStartBatch(plan.missing.slice(0, room), async (pod) => {
    await ctx.client.create(Resources.pods(ns), pod).catch((err: unknown) => {
      if (!isConflict(err)) throw err;
      plan.pending = true;
    });
  });
  return plan.pending;
}

/**
 * Owned pods that are on their way to Running: not Running yet, younger than the starting
 * window, not terminating, on a connected device (an offline device's pods wait for it, not us).
 */
function startingPods(ctx: ControllerContext, owned: PodObject[]): number {
  const now = Date.now();
  return owned.filter((p) => {
    if (p.status?.phase === 'Running' || p.metadata.deletionTimestamp) return false;
    const ageMs = now - Date.parse(p.metadata.creationTimestamp ?? '');
    if (!(ageMs < STARTING_WINDOW_MS)) return false;
    const target = p.spec.nodeName ? deviceForNode(p.spec.nodeName) : undefined;
    return !!target && ctx.states.peek(keyFor(target.namespace, target.device))?.connected === true;
  }).length;
}

interface DeviceOutcome {
  applied: boolean;
  successful: boolean;
  failure?: FailingDevice;
}

const FAILED_STATES = new Set(['failed', 'backoff', 'dead']);

function deviceOutcome(
  ctx: ControllerContext,
  device: EdgeDevice,
  pods: KubeObject[],
): DeviceOutcome {
  const report = ctx.states.peek(keyFor(device.metadata.namespace, device.metadata.name))?.report;
  const modules = new Map<string, ModuleReport>((report?.modules ?? []).map((m) => [m.name, m]));
  const wanted = pods.map((pod) => ({
    name: pod.metadata.labels?.[Labels.module] ?? '',
    state:
      pod.metadata.annotations?.['kedge.io/desired-status'] === 'stopped' ? 'stopped' : 'running',
  }));
  const failed = wanted
    .map((w) => modules.get(w.name))
    .find((m) => m && FAILED_STATES.has(m.runtimeStatus));
  const applied = wanted.every((w) => modules.has(w.name));
  const successful = applied && wanted.every((w) => modules.get(w.name)?.runtimeStatus === w.state);
  if (!failed) return { applied, successful };
  const failure: FailingDevice = {
    device: device.metadata.name!,
    module: failed.name,
    reason: failed.reason ?? failed.runtimeStatus,
    message: (failed.statusDescription ?? '').slice(0, 1024),
  };
  return { applied, successful: false, failure };
}

interface Rollout {
  devices: EdgeDevice[];
  desired: Map<string, KubeObject>;
  lost: (LostClaim & { device: string })[];
}

async function writeStatus(
  ctx: ControllerContext,
  deployment: Dep,
  { devices, desired, lost }: Rollout,
): Promise<void> {
  const byDevice = new Map<string, KubeObject[]>();
  for (const pod of desired.values()) {
    const device = pod.metadata.labels![Labels.device]!;
    byDevice.set(device, [...(byDevice.get(device) ?? []), pod]);
  }
  const outcomes = devices.map((d) => deviceOutcome(ctx, d, byDevice.get(d.metadata.name!) ?? []));
  const counts = {
    targetedCount: devices.length,
    appliedCount: outcomes.filter((o) => o.applied).length,
    reportedSuccessfulCount: outcomes.filter((o) => o.successful).length,
    reportedFailedCount: outcomes.filter((o) => o.failure).length,
  };
  const failingDevices = outcomes
    .flatMap((o) => (o.failure ? [o.failure] : []))
    .slice(0, MAX_STATUS_ENTRIES);
  const conflicts = lost
    .slice(0, MAX_STATUS_ENTRIES)
    .map((l) => ({ device: l.device, module: l.module, winner: l.winner }));
  const conditions = mergeConditions(
    deployment.status?.conditions,
    [...deploymentConditions(counts, conflicts.length), routesCondition(deployment)],
    deployment.metadata.generation,
  );
  const status: EdgeDeploymentStatus = {
    observedGeneration: deployment.metadata.generation,
    ...counts,
    failingDevices,
    conflicts,
    conditions,
  };
  const { conditions: before, ...restBefore } = deployment.status ?? {};
  const { conditions: after, ...restAfter } = status;
  if (sameConditions(before, after) && JSON.stringify(restBefore) === JSON.stringify(restAfter))
    return;
  await ctx.client.patch(
    Resources.edgeDeployments(deployment.metadata.namespace),
    deployment.metadata.name!,
    { status },
    { subresource: 'status' },
  );
}

function deploymentConditions(
  c: {
    targetedCount: number;
    appliedCount: number;
    reportedSuccessfulCount: number;
    reportedFailedCount: number;
  },
  conflicts: number,
): ConditionInput[] {
  const ready = c.reportedSuccessfulCount === c.targetedCount && c.reportedFailedCount === 0;
  return [
    ready
      ? {
          type: 'Ready',
          status: 'True',
          reason: 'AllDevicesSucceeded',
          message: `${c.reportedSuccessfulCount}/${c.targetedCount} devices run every module`,
        }
      : {
          type: 'Ready',
          status: 'False',
          reason: c.reportedFailedCount > 0 ? 'ModulesFailing' : 'Progressing',
          message: `${c.reportedSuccessfulCount}/${c.targetedCount} devices run every module, ${c.reportedFailedCount} failing`,
        },
    {
      type: 'Applied',
      status: c.appliedCount === c.targetedCount ? 'True' : 'False',
      reason: c.appliedCount === c.targetedCount ? 'AllDevicesApplied' : 'Applying',
      message: `${c.appliedCount}/${c.targetedCount} devices applied`,
    },
    conflicts > 0
      ? {
          type: 'Conflict',
          status: 'True',
          reason: 'ModuleNameConflict',
          message: `${conflicts} module(s) lost to higher-priority deployments; see status.conflicts`,
        }
      : {
          type: 'Conflict',
          status: 'False',
          reason: 'NoConflict',
          message: 'no module-name conflicts',
        },
  ];
}

/** RoutesValid: each inline route must parse; bad ones are left out of the devices' hubs. */
function routesCondition(deployment: Dep): ConditionInput {
  const errors = (deployment.spec.routes ?? []).flatMap((r) => {
    const error = routeError(routeText(r));
    return error ? [`${r.name}: ${error.message} (at position ${error.position})`] : [];
  });
  return errors.length === 0
    ? { type: 'RoutesValid', status: 'True', reason: 'Parsed', message: 'every route compiles' }
    : { type: 'RoutesValid', status: 'False', reason: 'ParseError', message: errors.join('; ') };
}

/** Pods owned by a deployment, for handlers that need them. */
export function ownedPods(ctx: ControllerContext, deployment: Dep): PodObject[] {
  return ctx.informers.pods
    .list()
    .filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === deployment.metadata.uid));
}
