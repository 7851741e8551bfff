/**
 * The reconcile planner: a pure function from desired modules, observed instances and restart
 * bookkeeping to the actions that move the device towards the desired state, plus the status to
 * report for each module. Level-based: it reads only the current state, so running it twice on
 * the same input gives the same plan.
 */
import { RESTART_POLICIES, type RestartPolicy } from '../../common/manifest/index.js';
import { coolOffMs, type RestartSettings } from './backoff.js';
import type { ModuleSpec, ObservedModule, RuntimeStatus, StatusReason } from './types.js';

/** A failed pull, create or start of one configuration of a module. */
export interface FailureRecord {
  configHash: string;
  reason: StatusReason;
  message: string;
  /** True when retrying cannot help (the runtime rejected the options); waits for a new config. */
  terminal: boolean;
  atMs: number;
  /** Failed attempts so far; drives the retry cool-off. */
  attempts: number;
}

/** Per-module restart bookkeeping, persisted across agent restarts. */
export interface RestartRecord {
  /** The configuration these counters belong to; a new configuration starts from zero. */
  configHash: string;
  restartCount: number;
  lastRestartMs?: number;
  /** When the agent first saw the module unhealthy (cleared once healthy again). */
  unhealthySinceMs?: number;
  /** Set when the agent itself stopped the module, so starting it again is not a restart. */
  stoppedByAgent?: boolean;
  failure?: FailureRecord;
  /** When the agent last began pulling this configuration's image. */
  pullStartedMs?: number;
}

/** What to do to one module. */
export type Action =
  | { kind: 'create'; spec: ModuleSpec; start: boolean; retry: boolean }
  | { kind: 'replace'; spec: ModuleSpec; id: string; start: boolean }
  | { kind: 'start'; spec: ModuleSpec; id: string; restart: boolean }
  | { kind: 'restart'; spec: ModuleSpec; id: string }
  | { kind: 'stop'; spec: ModuleSpec; id: string };

/** The status the planner derived for one module. */
export interface PlannedStatus {
  runtimeStatus: RuntimeStatus;
  reason?: StatusReason;
  statusDescription?: string;
}

/** The plan for one desired module. */
export interface ModulePlan {
  name: string;
  status: PlannedStatus;
  action?: Action;
  /** The record to keep for this module after planning (before the action runs). */
  record: RestartRecord;
  /** When this module needs another look (end of a cool-off, health reset). */
  wakeAtMs?: number;
}

/** The whole plan of one reconcile pass. */
export interface Plan {
  /** Instances to remove first: orphans and duplicates. */
  removals: ObservedModule[];
  /** One entry per desired module, in startup order. */
  modules: ModulePlan[];
  /** Earliest wake-up of any module, if any. */
  wakeAtMs?: number;
}

/** Input of {@link planReconcile}. */
export interface PlanInput {
  /** Desired modules in startup order. */
  desired: readonly ModuleSpec[];
  observed: readonly ObservedModule[];
  records: ReadonlyMap<string, RestartRecord>;
  nowMs: number;
  settings: RestartSettings;
}

/** Plans one reconcile pass. Pure: no I/O, no clock. */
export function planReconcile(input: PlanInput): Plan {
  const byName = new Map<string, ObservedModule>();
  const removals: ObservedModule[] = [];
  const wanted = new Set(input.desired.map((d) => d.name));
  for (const o of input.observed) {
    const seen = byName.get(o.name);
    if (!wanted.has(o.name)) removals.push(o);
    else if (!seen) byName.set(o.name, o);
    else removals.push(pickDuplicateToRemove(seen, o, byName));
  }
  const modules = input.desired.map((spec) => {
    const fresh: RestartRecord = { configHash: spec.configHash, restartCount: 0 };
    const old = input.records.get(spec.name);
    const record = old?.configHash === spec.configHash ? { ...old } : fresh;
    return planModule(spec, byName.get(spec.name), record, input);
  });
  const wakes = modules.map((m) => m.wakeAtMs).filter((w): w is number => w !== undefined);
  const plan: Plan = { removals, modules };
  if (wakes.length > 0) plan.wakeAtMs = Math.min(...wakes);
  return plan;
}

/** Keeps the instance with the current config (or the newer one) and returns the other. */
function pickDuplicateToRemove(
  seen: ObservedModule,
  other: ObservedModule,
  byName: Map<string, ObservedModule>,
): ObservedModule {
  const otherIsBetter =
    other.state === 'running' && seen.state !== 'running'
      ? true
      : (other.startedAt?.getTime() ?? 0) > (seen.startedAt?.getTime() ?? 0);
  if (!otherIsBetter) return other;
  byName.set(other.name, other);
  return seen;
}

function planModule(
  spec: ModuleSpec,
  observed: ObservedModule | undefined,
  record: RestartRecord,
  input: PlanInput,
): ModulePlan {
  const start = spec.desiredStatus === 'running';
  const failure = record.failure;
  if (observed && observed.configHash !== spec.configHash) {
    // The old instance keeps running while the new configuration's image cannot be pulled: a
    // failed replace retries after the same cool-off as a failed create (IoT Edge pulls first).
    if (failure) return planAfterFailure(spec, { failure, record, observed }, input);
    const action: Action = { kind: 'replace', spec, id: observed.id, start };
    return { name: spec.name, status: { runtimeStatus: 'unknown' }, action, record };
  }
  if (failure && (!observed || observed.state === 'created')) {
    return planAfterFailure(spec, { failure, record, observed }, input);
  }
  if (!observed) {
    const action: Action = { kind: 'create', spec, start, retry: false };
    return { name: spec.name, status: { runtimeStatus: 'unknown' }, action, record };
  }
  if (!start) return planStopped(spec, observed, record);
  return planRunning(spec, observed, record, input);
}

interface FailureContext {
  failure: FailureRecord;
  record: RestartRecord;
  /**
   * A container left in `created` by a failed start, or the previous configuration's instance
   * that a failed replace left running, if any.
   */
  observed: ObservedModule | undefined;
}

function planAfterFailure(spec: ModuleSpec, ctx: FailureContext, input: PlanInput): ModulePlan {
  const { failure, record, observed } = ctx;
  const description = failure.message;
  const base = { name: spec.name, record };
  if (failure.terminal) {
    return {
      ...base,
      status: { runtimeStatus: 'failed', reason: failure.reason, statusDescription: description },
    };
  }
  const wakeAtMs = failure.atMs + coolOffMs(failure.attempts - 1, input.settings);
  if (input.nowMs < wakeAtMs) return { ...base, status: backoff(failure), wakeAtMs };
  return { ...base, status: backoff(failure), action: retryAction(spec, observed) };
}

function backoff(failure: FailureRecord): PlannedStatus {
  return { runtimeStatus: 'backoff', reason: failure.reason, statusDescription: failure.message };
}

/** Retries what failed: the replace of an older instance, the start of a created one, a create. */
function retryAction(spec: ModuleSpec, observed: ObservedModule | undefined): Action {
  const start = spec.desiredStatus === 'running';
  if (observed && observed.configHash !== spec.configHash)
    return { kind: 'replace', spec, id: observed.id, start };
  return observed
    ? { kind: 'start', spec, id: observed.id, restart: false }
    : { kind: 'create', spec, start, retry: true };
}
function planStopped(
  spec: ModuleSpec,
  observed: ObservedModule,
  record: RestartRecord,
): ModulePlan {
  const status: PlannedStatus = {
    runtimeStatus: 'stopped',
    statusDescription: 'desired status is stopped',
  };
  if (
    observed.state === 'running' ||
    observed.state === 'restarting' ||
    observed.state === 'paused'
  ) {
    return { name: spec.name, status, record, action: { kind: 'stop', spec, id: observed.id } };
  }
  return { name: spec.name, status, record };
}

function planRunning(
  spec: ModuleSpec,
  observed: ObservedModule,
  record: RestartRecord,
  input: PlanInput,
): ModulePlan {
  switch (observed.state) {
    case 'running':
      return planLive(spec, observed, record, input);
    case 'created':
      return {
        name: spec.name,
        status: { runtimeStatus: 'unknown' },
        record,
        action: { kind: 'start', spec, id: observed.id, restart: false },
      };
    case 'exited':
    case 'dead':
      return planExited(spec, observed, record, input);
    default:
      // paused, restarting, removing: transient states that someone else is driving.
      return {
        name: spec.name,
        status: { runtimeStatus: 'unknown', statusDescription: observed.state },
        record,
      };
  }
}

/** Policy order as edgeAgent compares it: never < on-failure < on-unhealthy < always. */
function atLeast(policy: RestartPolicy, threshold: RestartPolicy): boolean {
  return RESTART_POLICIES.indexOf(policy) >= RESTART_POLICIES.indexOf(threshold);
}

function planLive(
  spec: ModuleSpec,
  observed: ObservedModule,
  record: RestartRecord,
  input: PlanInput,
): ModulePlan {
  const { settings, nowMs } = input;
  if (observed.health !== 'unhealthy') {
    delete record.unhealthySinceMs;
    const startedMs = observed.startedAt?.getTime() ?? nowMs;
    const resetAtMs = startedMs + settings.healthyResetMs;
    const plan: ModulePlan = { name: spec.name, status: { runtimeStatus: 'running' }, record };
    if (record.restartCount > 0 && nowMs >= resetAtMs) record.restartCount = 0;
    else if (record.restartCount > 0) plan.wakeAtMs = resetAtMs;
    return plan;
  }
  record.unhealthySinceMs ??= nowMs;
  const unhealthy: PlannedStatus = {
    runtimeStatus: 'unhealthy',
    reason: 'Unhealthy',
    statusDescription: 'health check failing',
  };
  if (!atLeast(spec.restartPolicy, 'on-unhealthy'))
    return { name: spec.name, status: unhealthy, record };
  if (record.restartCount >= settings.maxRestarts) {
    return { name: spec.name, status: givenUp(record, unhealthy), record };
  }
  const wakeAtMs = record.unhealthySinceMs + coolOffMs(record.restartCount, settings);
  if (nowMs < wakeAtMs) return { name: spec.name, status: unhealthy, record, wakeAtMs };
  return {
    name: spec.name,
    status: unhealthy,
    record,
    action: { kind: 'restart', spec, id: observed.id },
  };
}

function givenUp(record: RestartRecord, last: PlannedStatus): PlannedStatus {
  const status: PlannedStatus = {
    runtimeStatus: 'failed',
    statusDescription: `gave up after ${record.restartCount} restarts; last: ${last.statusDescription ?? last.runtimeStatus}`,
  };
  if (last.reason) status.reason = last.reason;
  return status;
}

function planExited(
  spec: ModuleSpec,
  observed: ObservedModule,
  record: RestartRecord,
  input: PlanInput,
): ModulePlan {
  const base = { name: spec.name, record };
  if (record.stoppedByAgent) {
    return {
      ...base,
      status: { runtimeStatus: 'stopped' },
      action: { kind: 'start', spec, id: observed.id, restart: false },
    };
  }
  const exitCode = observed.exitCode ?? 0;
  const exited = exitStatus(observed, exitCode);
  const shouldRestart =
    exitCode === 0 ? spec.restartPolicy === 'always' : atLeast(spec.restartPolicy, 'on-failure');
  if (!shouldRestart) return { ...base, status: exited };
  if (record.restartCount >= input.settings.maxRestarts)
    return { ...base, status: givenUp(record, { ...exited, reason: 'CrashLoopBackOff' }) };
  const exitedMs = observed.finishedAt?.getTime() ?? input.nowMs;
  const wakeAtMs = exitedMs + coolOffMs(record.restartCount, input.settings);
  const backoff: PlannedStatus = {
    ...exited,
    runtimeStatus: 'backoff',
    reason: 'CrashLoopBackOff',
  };
  if (input.nowMs < wakeAtMs) return { ...base, status: backoff, wakeAtMs };
  return {
    ...base,
    status: backoff,
    action: { kind: 'start', spec, id: observed.id, restart: true },
  };
}

function exitStatus(observed: ObservedModule, exitCode: number): PlannedStatus {
  if (observed.state === 'dead')
    return { runtimeStatus: 'dead', statusDescription: observed.error || 'dead' };
  const runtimeStatus: RuntimeStatus = exitCode === 0 ? 'stopped' : 'failed';
  const detail = observed.error ? `: ${observed.error}` : '';
  return { runtimeStatus, statusDescription: `exited with code ${exitCode}${detail}` };
}
