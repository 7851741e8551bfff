import type { ModuleReport } from '../common/cloudlink/protocol.js';
import { withDefaultTag } from '../common/manifest/index.js';
import type {
  EdgeDeployment,
  EdgeDeploymentRolloutStatus,
  EdgeDeploymentStatus,
  EdgeDevice,
  FailingDevice,
} from '../crds/index.js';
import { deviceForNode, Labels, nodeNameFor } from '../provider/naming.js';
import { ModuleAnnotations } from '../provider/translate.js';
import { keyFor, type ControllerContext, type PodObject } from './context.js';
import { mergeConditions, sameConditions, type ConditionInput } from './conditions.js';
import {
  desiredModulePod,
  inPlacePatch,
  liveAnnotations,
  SPEC_HASH_ANNOTATION,
} from './deployment-pods.js';
import { deploymentsFor } from './device-desired.js';
import { isConflict, isNotFound, Resources, type KubeObject } from './kube/client.js';
import { resolveLayers, withLayeredProperties, type LostClaim } from './layering.js';
import { matchesSelector } from './selector.js';
import { routeText } from './desired.js';
import { routeError } from './reconcile-route.js';
import {
  decideRollout,
  rolloutLimits,
  type Assignment,
  type DeviceProgress,
  type DevicePosition,
  type PreviousRollout,
  type RolloutDecision,
  type RolloutPhase,
} from './rollout.js';
import { revisionOf, rolloutStore, stableVariant } from './rollout-store.js';
import { slowStartBatch } from './slow-start.js';
import type { ReconcileResult } from './workqueue.js';

/** Bounded status lists, so one deployment over a large fleet keeps a small object. */
const MAX_STATUS_ENTRIES = 20;
/** Longest status message (the CRD's bound). */
const MAX_MESSAGE_LENGTH = 1024;
/** While pods are being replaced or a rollout moves, the deployment is looked at again this soon. */
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
  const devices = targetedDevices(ctx, deployment);
  const store = rolloutStore(ctx);
  const remembered = await store.load(ctx, deployment);
  const target = revisionOf(deployment);
  const stableSpec =
    remembered.memory.stableRevision !== target ? remembered.stableSpec : undefined;
  const stable = stableSpec && stableVariant(deployment, stableSpec);
  const owned = ownedByDevice(ctx, deployment);
  const nowMs = Date.now();
  const views = devices.map((device) =>
    deviceView(ctx, {
      deployment,
      stable,
      target,
      device,
      owned,
      nowMs,
    }),
  );
  const decision = decideRollout({
    targetRevision: target,
    generation: deployment.metadata.generation ?? 0,
    memory: remembered.memory,
    devices: views.map((v) => v.progress),
    limits: rolloutLimits(deployment.spec.rollout, devices.length),
    previous: previousRollout(deployment),
    nowMs,
  });
  await store.save(ctx, deployment, decision.memory);
  const pending = await syncPods(ctx, deployment, assignedPods(views, decision));
  for (const e of decision.events) ctx.events.record(deployment, e.type, e.reason, e.message);
  await writeStatus(ctx, deployment, {
    decision,
    target,
    targeted: devices.length,
    applied: views.filter((v) => v.progress.position === appliedPosition(decision.phase)).length,
    lost: views.flatMap((v) => v.lost),
  });
  const moving = decision.phase === 'Progressing' || decision.phase === 'RollingBack';
  return pending || moving ? { requeueAfterMs: REPLACE_POLL_MS } : {};
}

/** The devices the deployment's selector matches. */
function targetedDevices(ctx: ControllerContext, deployment: Dep): EdgeDevice[] {
  return ctx.informers.devices
    .list()
    .filter(
      (d) =>
        d.metadata.namespace === deployment.metadata.namespace &&
        !d.metadata.deletionTimestamp &&
        matchesSelector(deployment.spec.selector, d.metadata.labels),
    );
}

/** The pods every device should have under the decision, by pod name. */
function assignedPods(views: DeviceView[], decision: RolloutDecision): Map<string, KubeObject> {
  const desired = new Map<string, KubeObject>();
  for (const view of views) {
    const assigned = decision.assignments.get(view.progress.name) ?? 'keep';
    for (const pod of view.pods[assigned]) desired.set(pod.metadata.name!, pod);
  }
  return desired;
}

/** The position a device has once the rollout has done its part there. */
function appliedPosition(phase: RolloutPhase): DevicePosition {
  return phase === 'RollingBack' || phase === 'RolledBack' ? 'stable' : 'target';
}

function previousRollout(deployment: Dep): PreviousRollout {
  const r = deployment.status?.rollout;
  return {
    ...(r?.phase ? { phase: r.phase } : {}),
    ...(r?.targetRevision ? { targetRevision: r.targetRevision } : {}),
    ...(deployment.status?.reportedSuccessfulCount !== undefined
      ? { successful: deployment.status.reportedSuccessfulCount }
      : {}),
  };
}

/** The deployment's pods by device name. */
function ownedByDevice(ctx: ControllerContext, deployment: Dep): Map<string, PodObject[]> {
  const byDevice = new Map<string, PodObject[]>();
  for (const pod of ownedPods(ctx, deployment)) {
    const device = pod.metadata.labels?.[Labels.device];
    if (device) byDevice.set(device, [...(byDevice.get(device) ?? []), pod]);
  }
  return byDevice;
}

/** The module pods `deployment` (or its stable variant) wins on `device`, and what it lost. */
function modulePods(
  ctx: ControllerContext,
  deployment: EdgeDeployment,
  device: EdgeDevice,
): { pods: KubeObject[]; lost: (LostClaim & { device: string })[] } {
  const uid = deployment.metadata.uid;
  const layers = deploymentsFor(ctx, device).map((d) => (d.metadata.uid === uid ? deployment : d));
  const { winners, lost } = resolveLayers(layers);
  const name = device.metadata.name!;
  const node = nodeNameFor(device.metadata.namespace!, name);
  const pods = [...winners.values()]
    .filter((claim) => claim.deployment.metadata.uid === uid)
    .map((claim) => desiredModulePod(deployment, withLayeredProperties(claim, layers), name, node));
  const mine = lost
    .filter((l) => l.deployment === deployment.metadata.name)
    .map((l) => ({ ...l, device: name }));
  return { pods, lost: mine };
}

interface ViewInput {
  deployment: Dep;
  /** The deployment at its stable revision, while another revision is the target. */
  stable: EdgeDeployment | undefined;
  target: string;
  device: EdgeDevice;
  owned: Map<string, PodObject[]>;
  nowMs: number;
}

/** One device: where its pods are, how it reports, and the pods each assignment means. */
interface DeviceView {
  progress: DeviceProgress;
  pods: Record<Assignment, KubeObject[]>;
  lost: (LostClaim & { device: string })[];
}

function deviceView(ctx: ControllerContext, input: ViewInput): DeviceView {
  const { deployment, device } = input;
  const name = device.metadata.name!;
  const wanted = modulePods(ctx, deployment, device);
  const { position, pods } = podChoices(ctx, input, wanted.pods);
  const updating = position === 'target' || position === 'changing';
  const judgedAgainst = updating || position === 'none' ? pods.target : pods.keep;
  const state = ctx.states.peek(keyFor(device.metadata.namespace, name));
  const report = deviceOutcome(state?.report?.modules ?? [], name, judgedAgainst);
  const progress: DeviceProgress = {
    name,
    connected: state?.connected === true,
    position,
    ...report,
  };
  if (updating)
    progress.sinceMs = rolloutStore(ctx).startedAt(deployment, name, input.target, input.nowMs);
  return { progress, pods, lost: wanted.lost };
}

/** Where the device's pods are, and the pods each assignment would give it. */
function podChoices(
  ctx: ControllerContext,
  input: ViewInput,
  wanted: KubeObject[],
): { position: DevicePosition; pods: Record<Assignment, KubeObject[]> } {
  const stablePods = input.stable ? modulePods(ctx, input.stable, input.device).pods : undefined;
  const existing = input.owned.get(input.device.metadata.name!) ?? [];
  const live = existing.filter((p) => !p.metadata.deletionTimestamp);
  const position = positionOf(existing, wanted, stablePods);
  const pods: Record<Assignment, KubeObject[]> = {
    target: wanted,
    stable: stablePods ?? live,
    keep: position === 'stable' && stablePods ? stablePods : live,
  };
  return { position, pods };
}

/** Whether every pod of `live` carries the spec hash `pods` has for it, and whether all are there. */
function matching(
  live: readonly KubeObject[],
  pods: readonly KubeObject[] | undefined,
): { all: boolean; full: boolean } {
  if (!pods || live.length === 0) return { all: false, full: false };
  const hashes = new Map(
    pods.map((p) => [p.metadata.name!, p.metadata.annotations?.[SPEC_HASH_ANNOTATION]]),
  );
  const all = live.every(
    (p) =>
      hashes.has(p.metadata.name!) &&
      hashes.get(p.metadata.name!) === p.metadata.annotations?.[SPEC_HASH_ANNOTATION],
  );
  return { all, full: all && live.length === pods.length };
}

/** Where a device's pods are, from their spec hashes (see {@link DevicePosition}). */
export function positionOf(
  existing: readonly KubeObject[],
  target: readonly KubeObject[],
  stable: readonly KubeObject[] | undefined,
): DevicePosition {
  if (existing.length === 0) return target.length === 0 ? 'target' : 'none';
  const live = existing.filter((p) => !p.metadata.deletionTimestamp);
  const t = matching(live, target);
  const s = matching(live, stable);
  if (t.full || (live.length === 0 && target.length === 0)) return 'target';
  if (s.full || (s.all && !t.all)) return 'stable';
  if (t.all || live.length === 0) return 'changing';
  return 'other';
}

/**
 * What syncPods must do: pods to delete, pods to create, pods whose live annotations (desired
 * properties) change in place, and whether a replacement waits.
 */
export interface PodPlan {
  doomed: string[];
  missing: KubeObject[];
  /** Pods updated in place to a new spec (image and module annotations). */
  patched: { name: string; patch: object }[];
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
  const plan: PodPlan = { doomed: [], missing: [], patched: [], refreshed: [], pending: false };
  for (const pod of owned) planOwnedPod(plan, pod, desired.get(pod.metadata.name!));
  for (const [name, pod] of desired) {
    const current = existing.get(name);
    if (current) plan.pending ||= !!current.metadata.deletionTimestamp;
    else plan.missing.push(pod);
  }
  return plan;
}

/**
 * Adds what one existing pod needs to `plan`: nothing, an in-place update to a new spec,
 * deletion (a new pod follows), or a live annotation patch.
 */
function planOwnedPod(plan: PodPlan, pod: PodObject, want: KubeObject | undefined): void {
  if (pod.metadata.deletionTimestamp) return;
  if (!want) {
    plan.doomed.push(pod.metadata.name!);
    return;
  }
  const outdated =
    want.metadata.annotations?.[SPEC_HASH_ANNOTATION] !==
    pod.metadata.annotations?.[SPEC_HASH_ANNOTATION];
  if (outdated) {
    const patch = inPlacePatch(pod, want);
    if (patch) plan.patched.push({ name: pod.metadata.name!, patch });
    else {
      plan.doomed.push(pod.metadata.name!);
      plan.pending = true;
    }
    return;
  }
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
  // The device sees the old module turn into the new one, so it pulls before it stops.
  await slowStartBatch(plan.patched, async ({ name, patch }) => {
    await ctx.client
      .patch(Resources.pods(ns), name, patch, { type: 'strategic' })
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  });
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

const FAILED_STATES = new Set(['failed', 'backoff', 'dead']);

/**
 * Whether a report is about the spec of `pod`: the device echoes the pod's spec hash. An agent
 * from before safe rollouts echoes nothing; its report counts when the image matches.
 */
function reportsSpec(report: ModuleReport, pod: KubeObject): boolean {
  const hash = pod.metadata.annotations?.[SPEC_HASH_ANNOTATION];
  if (report.specHash !== undefined) return report.specHash === hash;
  const image = (pod.spec as { containers: { image: string }[] }).containers[0]?.image;
  return image !== undefined && report.image === withDefaultTag(image);
}

/**
 * How a device reports the spec of `pods`: successful when every module runs (or is stopped, as
 * wanted) on exactly that spec, failed when one of them fails on it, else pending.
 */
export function deviceOutcome(
  modules: readonly ModuleReport[],
  device: string,
  pods: readonly KubeObject[],
): Pick<DeviceProgress, 'outcome' | 'failure'> {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const verdicts = pods.map((pod) => moduleOutcome(byName, device, pod));
  const failed = verdicts.find((v) => v.outcome === 'failed');
  if (failed) return failed;
  return { outcome: verdicts.every((v) => v.outcome === 'successful') ? 'successful' : 'pending' };
}

/** How the device reports the module of one pod, against that pod's spec. */
function moduleOutcome(
  byName: ReadonlyMap<string, ModuleReport>,
  device: string,
  pod: KubeObject,
): Pick<DeviceProgress, 'outcome' | 'failure'> {
  const name = pod.metadata.labels?.[Labels.module] ?? '';
  const report = byName.get(name);
  if (!report || !reportsSpec(report, pod)) return { outcome: 'pending' };
  if (FAILED_STATES.has(report.runtimeStatus)) {
    const failure: FailingDevice = {
      device,
      module: name,
      reason: report.reason ?? report.runtimeStatus,
      message: (report.statusDescription ?? '').slice(0, MAX_MESSAGE_LENGTH),
    };
    return { outcome: 'failed', failure };
  }
  const stopped = pod.metadata.annotations?.[ModuleAnnotations.desiredStatus] === 'stopped';
  const wanted = stopped ? 'stopped' : 'running';
  return { outcome: report.runtimeStatus === wanted ? 'successful' : 'pending' };
}

interface StatusInput {
  decision: RolloutDecision;
  target: string;
  targeted: number;
  applied: number;
  lost: (LostClaim & { device: string })[];
}

async function writeStatus(
  ctx: ControllerContext,
  deployment: Dep,
  { decision, target, targeted, applied, lost }: StatusInput,
): Promise<void> {
  const counts: Counts = {
    targetedCount: targeted,
    appliedCount: applied,
    reportedSuccessfulCount: decision.successful,
    reportedFailedCount: decision.failures.length,
  };
  const conflicts = lost
    .slice(0, MAX_STATUS_ENTRIES)
    .map((l) => ({ device: l.device, module: l.module, winner: l.winner }));
  const memory = decision.memory;
  const rollout: EdgeDeploymentRolloutStatus = {
    phase: decision.phase,
    targetRevision: target,
    ...(memory.stableRevision ? { stableRevision: memory.stableRevision } : {}),
    updatedCount: decision.updated,
    ...(memory.failedRevision ? { failedRevision: memory.failedRevision } : {}),
    ...(memory.failedGeneration !== undefined ? { failedGeneration: memory.failedGeneration } : {}),
    message: decision.message.slice(0, MAX_MESSAGE_LENGTH),
  };
  const conditions = mergeConditions(
    deployment.status?.conditions,
    [
      ...deploymentConditions(counts, decision),
      conflictCondition(conflicts.length),
      routesCondition(deployment),
    ],
    deployment.metadata.generation,
  );
  const status: EdgeDeploymentStatus = {
    observedGeneration: deployment.metadata.generation,
    ...counts,
    rollout,
    failingDevices: decision.failures.slice(0, MAX_STATUS_ENTRIES),
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

interface Counts {
  targetedCount: number;
  appliedCount: number;
  reportedSuccessfulCount: number;
  reportedFailedCount: number;
}

/** Ready, Applied, Progressing and RolledBack from the counts and the rollout decision. */
function deploymentConditions(c: Counts, decision: RolloutDecision): ConditionInput[] {
  const { phase } = decision;
  const everywhere = `${c.reportedSuccessfulCount}/${c.targetedCount} devices run the current spec`;
  const ready =
    phase === 'Complete' &&
    c.reportedSuccessfulCount === c.targetedCount &&
    c.reportedFailedCount === 0;
  const notReadyReason = ((): string => {
    if (phase === 'Halted' || phase === 'RollingBack' || phase === 'RolledBack') return phase;
    return c.reportedFailedCount > 0 ? 'ModulesFailing' : 'Progressing';
  })();
  const rolledBack = phase === 'RollingBack' || phase === 'RolledBack';
  return [
    ready
      ? { type: 'Ready', status: 'True', reason: 'AllDevicesSucceeded', message: everywhere }
      : {
          type: 'Ready',
          status: 'False',
          reason: notReadyReason,
          message: rolledBack
            ? decision.message
            : `${everywhere}, ${c.reportedFailedCount} failing`,
        },
    {
      type: 'Applied',
      status: c.appliedCount === c.targetedCount ? 'True' : 'False',
      reason: c.appliedCount === c.targetedCount ? 'AllDevicesApplied' : 'Applying',
      message: `${c.appliedCount}/${c.targetedCount} devices applied`,
    },
    {
      type: 'Progressing',
      status: phase === 'Progressing' || phase === 'RollingBack' ? 'True' : 'False',
      reason: phase,
      message: decision.message,
    },
    rolledBack
      ? { type: 'RolledBack', status: 'True', reason: phase, message: decision.message }
      : {
          type: 'RolledBack',
          status: 'False',
          reason: 'NoRollback',
          message: 'the current spec has not been rolled back',
        },
  ];
}

function conflictCondition(conflicts: number): ConditionInput {
  return conflicts > 0
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
      };
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
