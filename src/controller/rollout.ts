/**
 * The rollout decision of one EdgeDeployment: a pure function from what the devices run and
 * report to which revision each device should run, the rollout phase, and the events to record.
 * The reconciler (reconcile-deployment.ts) observes and acts; this file only decides, so every
 * batch, threshold and rollback rule is tested without an API server (rollout.test.ts).
 */
import type { EdgeDeploymentRollout, FailingDevice } from '../crds/index.js';
import { ROLLOUT_DEFAULTS } from '../crds/index.js';
import type { EventType } from './events.js';

/** Where a rollout stands; the values of `status.rollout.phase`. */
export type RolloutPhase = 'Progressing' | 'Complete' | 'Halted' | 'RollingBack' | 'RolledBack';

/**
 * Where a device's pods of this deployment are: all on the target revision, all on the stable
 * (last good) one, part way to the target (some replaced, none of another revision), on some
 * other revision (an abandoned rollout), or none at all.
 */
export type DevicePosition = 'target' | 'stable' | 'changing' | 'other' | 'none';

/** One targeted device as the reconciler observed it. */
export interface DeviceProgress {
  name: string;
  connected: boolean;
  position: DevicePosition;
  /** How the device reports the spec its pods carry: every module as wanted, a failure, or neither yet. */
  outcome: 'successful' | 'failed' | 'pending';
  failure?: FailingDevice;
  /** When it was given the revision it is on (its newest pod's creation), epoch ms. */
  sinceMs?: number;
}

/** What the controller remembers about the deployment's revisions. */
export interface RolloutMemory {
  /** The last revision that reached every connected device; its spec is kept in a ControllerRevision. */
  stableRevision?: string;
  failedRevision?: string;
  failedGeneration?: number;
  /** Why that rollout failed, for status and events. */
  failedReason?: string;
}

/** `spec.rollout` with defaults applied and percentages resolved against the targeted devices. */
export interface RolloutLimits {
  maxUnavailable: number;
  failureThreshold: number;
  autoRollback: boolean;
  progressDeadlineMs: number;
}

/** What the previous status said, so progress events fire once per change. */
export interface PreviousRollout {
  phase?: RolloutPhase;
  targetRevision?: string;
  successful?: number;
}

/** Everything one decision reads: the target, the memory, the devices, the limits and the clock. */
export interface RolloutInput {
  targetRevision: string;
  generation: number;
  memory: RolloutMemory;
  devices: readonly DeviceProgress[];
  limits: RolloutLimits;
  previous: PreviousRollout;
  nowMs: number;
}

/** What a device should run: the target revision, the stable one, or what it runs now. */
export type Assignment = 'target' | 'stable' | 'keep';

/** An Event to record on the EdgeDeployment. */
export interface RolloutEvent {
  type: EventType;
  reason: string;
  message: string;
}

/** What one decision says: each device's assignment, the phase, counts, memory and events. */
export interface RolloutDecision {
  phase: RolloutPhase;
  assignments: Map<string, Assignment>;
  memory: RolloutMemory;
  /** Devices given the target revision by this decision. */
  started: string[];
  /** Devices on the target revision. */
  updated: number;
  /** Devices that run what they should (the target, or the stable revision after a failure). */
  successful: number;
  /** Devices failing what they should run, past the progress deadline included. */
  failures: FailingDevice[];
  message: string;
  events: RolloutEvent[];
}

/** Failing devices named in a message at most; the status list has them all (bounded). */
const NAMED_IN_MESSAGE = 3;
const MS_PER_SEC = 1000;

/** A count or percentage of `total`: percentages round down (`up` for thresholds), at least 1. */
export function scaledValue(value: number | string, total: number, round: 'down' | 'up'): number {
  if (typeof value === 'number') return Math.max(1, value);
  const percent = Number.parseInt(value, 10);
  const exact = (percent * total) / 100;
  return Math.max(1, round === 'down' ? Math.floor(exact) : Math.ceil(exact));
}

/** `spec.rollout` with its defaults, resolved for `targeted` devices. */
export function rolloutLimits(
  rollout: EdgeDeploymentRollout | undefined,
  targeted: number,
): RolloutLimits {
  const r = rollout ?? {};
  return {
    maxUnavailable: scaledValue(
      r.maxUnavailable ?? ROLLOUT_DEFAULTS.maxUnavailable,
      targeted,
      'down',
    ),
    failureThreshold: scaledValue(
      r.failureThreshold ?? ROLLOUT_DEFAULTS.failureThreshold,
      targeted,
      'up',
    ),
    autoRollback: r.autoRollback ?? ROLLOUT_DEFAULTS.autoRollback,
    progressDeadlineMs:
      (r.progressDeadlineSeconds ?? ROLLOUT_DEFAULTS.progressDeadlineSeconds) * MS_PER_SEC,
  };
}

/** Decides one pass of the rollout. Pure: no I/O, no clock. */
export function decideRollout(input: RolloutInput): RolloutDecision {
  const { memory, targetRevision } = input;
  if (memory.stableRevision === targetRevision) return steady(input);
  const failed =
    memory.failedRevision === targetRevision && memory.failedGeneration === input.generation;
  return failed ? afterFailure(input, []) : rolling(input);
}

/** The target is the stable revision: every device gets it at once (new devices, live changes). */
function steady(input: RolloutInput): RolloutDecision {
  const assignments = new Map(input.devices.map((d) => [d.name, 'target' as const]));
  const failures = judged(input).flatMap((d) => (d.failure ? [d.failure] : []));
  const successful = count(input.devices, (d) => onTarget(d) && d.outcome === 'successful');
  return {
    ...base(input, 'Complete', assignments),
    successful,
    failures,
    message: `revision ${input.targetRevision} is the current spec on ${successful}/${input.devices.length} devices`,
  };
}

/** Updates devices in batches of at most maxUnavailable; halts when failures reach the threshold. */
function rolling(input: RolloutInput): RolloutDecision {
  const { limits, targetRevision: target } = input;
  const devices = judged(input);
  const failing = devices.filter((d) => onTarget(d) && d.failure);
  if (failing.length >= limits.failureThreshold) {
    const memory: RolloutMemory = {
      ...input.memory,
      failedRevision: target,
      failedGeneration: input.generation,
      failedReason: failureSummary(
        failing.map((d) => d.failure!),
        limits.failureThreshold,
      ),
    };
    return afterFailure({ ...input, memory }, haltEvents(input, memory));
  }
  const inFlight = count(devices, (d) => onTarget(d) && d.connected && d.outcome === 'pending');
  const room = Math.max(0, limits.maxUnavailable - inFlight);
  const waiting = devices
    .filter((d) => (d.position === 'stable' || d.position === 'other') && d.connected)
    .map((d) => d.name)
    .sort();
  const started = waiting.slice(0, room);
  const assignments = new Map<string, Assignment>();
  for (const d of devices)
    assignments.set(d.name, onTarget(d) || d.position === 'none' ? 'target' : 'keep');
  for (const name of started) assignments.set(name, 'target');
  const updated = count(devices, onTarget) + started.length;
  const successful = count(devices, (d) => onTarget(d) && d.outcome === 'successful');
  const failures = failing.map((d) => d.failure!);
  const settled = devices.every(
    (d) => (onTarget(d) && d.outcome !== 'pending') || (!d.connected && !onTarget(d)),
  );
  const total = devices.length;
  const events: RolloutEvent[] = [];
  if (started.length > 0)
    events.push({
      type: 'Normal',
      reason: 'RolloutBatchStarted',
      message: `updating ${started.length} device(s) to revision ${target} (generation ${input.generation}): ${named(started)}; ${updated}/${total} updated`,
    });
  const progressed =
    input.previous.targetRevision === target && successful > (input.previous.successful ?? 0);
  if (progressed && !settled)
    events.push({
      type: 'Normal',
      reason: 'RolloutBatchCompleted',
      message: `${successful}/${total} devices run revision ${target}`,
    });
  if (settled) {
    events.push({
      type: 'Normal',
      reason: 'RolloutComplete',
      message: `revision ${target} (generation ${input.generation}) runs on ${successful}/${total} devices and is now the last good spec`,
    });
    return {
      ...base(input, 'Complete', assignments),
      memory: { stableRevision: target },
      started,
      updated,
      successful,
      failures,
      message: `revision ${target} reached every connected device`,
      events,
    };
  }
  return {
    ...base(input, 'Progressing', assignments),
    started,
    updated,
    successful,
    failures,
    message: `rolling out revision ${target}: ${successful}/${total} devices run it, ${inFlight + started.length} updating (max ${limits.maxUnavailable}), ${failures.length} failed (threshold ${limits.failureThreshold})`,
    events,
  };
}

/** The target failed: roll every device back to the stable revision, or hold where they are. */
function afterFailure(input: RolloutInput, events: RolloutEvent[]): RolloutDecision {
  const { memory, limits } = input;
  const devices = judged(input);
  const stable = memory.stableRevision;
  const why = `revision ${memory.failedRevision} (generation ${memory.failedGeneration}) failed: ${memory.failedReason ?? 'too many devices failed'}`;
  if (!limits.autoRollback || !stable) {
    // A device part way to the target finishes (it has no whole spec otherwise); new devices get
    // the stable spec when there is one; everything else stays as it is.
    const held = (d: DeviceProgress): Assignment => {
      if (d.position === 'changing') return 'target';
      return d.position === 'none' && stable ? 'stable' : 'keep';
    };
    const assignments = new Map<string, Assignment>(devices.map((d) => [d.name, held(d)]));
    const reason = !stable ? 'no earlier revision reached every device' : 'autoRollback is false';
    return {
      ...base(input, 'Halted', assignments),
      memory,
      updated: count(devices, onTarget),
      successful: count(devices, (d) => onTarget(d) && d.outcome === 'successful'),
      failures: devices.flatMap((d) => (d.failure ? [d.failure] : [])),
      message: `halted, ${reason}; ${why}; change the spec to start a new rollout`,
      events,
    };
  }
  const assignments = new Map(devices.map((d) => [d.name, 'stable' as const]));
  const back = (d: DeviceProgress): boolean => d.position === 'stable' && d.outcome !== 'pending';
  const done = devices.every((d) => back(d) || (!d.connected && !onTarget(d)));
  const successful = count(devices, (d) => d.position === 'stable' && d.outcome === 'successful');
  const phase: RolloutPhase = done ? 'RolledBack' : 'RollingBack';
  if (done && input.previous.phase === 'RollingBack')
    events.push({
      type: 'Normal',
      reason: 'RolledBack',
      message: `${successful}/${devices.length} devices run revision ${stable} again; ${why}`,
    });
  return {
    ...base(input, phase, assignments),
    memory,
    updated: count(devices, onTarget),
    successful,
    failures: devices.flatMap((d) => (d.failure ? [d.failure] : [])),
    message: done
      ? `rolled back to revision ${stable}; ${why}`
      : `rolling back to revision ${stable}; ${why}`,
    events,
  };
}

function haltEvents(input: RolloutInput, memory: RolloutMemory): RolloutEvent[] {
  const rollback = input.limits.autoRollback && memory.stableRevision;
  const events: RolloutEvent[] = [
    {
      type: 'Warning',
      reason: 'RolloutHalted',
      message: `revision ${memory.failedRevision} (generation ${memory.failedGeneration}) halted: ${memory.failedReason}`,
    },
  ];
  if (rollback)
    events.push({
      type: 'Warning',
      reason: 'RollingBack',
      message: `rolling every device back to revision ${memory.stableRevision}`,
    });
  return events;
}

/** The devices, each failed one with a failure, a connected one pending past the deadline failed. */
function judged(input: RolloutInput): DeviceProgress[] {
  const deadline = input.limits.progressDeadlineMs;
  return input.devices.map((d) => {
    const late =
      onTarget(d) &&
      d.connected &&
      d.outcome === 'pending' &&
      d.sinceMs !== undefined &&
      input.nowMs - d.sinceMs > deadline;
    if (d.outcome === 'failed' && !d.failure)
      return { ...d, failure: { device: d.name, reason: 'Failed', message: '' } };
    if (!late) return d;
    const failure: FailingDevice = {
      device: d.name,
      reason: 'ProgressDeadlineExceeded',
      message: `did not report the new spec running within ${deadline / MS_PER_SEC}s`,
    };
    return { ...d, outcome: 'failed', failure };
  });
}

function onTarget(d: DeviceProgress): boolean {
  return d.position === 'target' || d.position === 'changing';
}

function failureSummary(failures: FailingDevice[], threshold: number): string {
  const first = failures
    .slice(0, NAMED_IN_MESSAGE)
    .map((f) => `${f.device}${f.module ? `/${f.module}` : ''}: ${f.reason}`)
    .join(', ');
  const more = failures.length > NAMED_IN_MESSAGE ? ', …' : '';
  return `${failures.length} device(s) failed (threshold ${threshold}): ${first}${more}`;
}

function named(names: string[]): string {
  const shown = names.slice(0, NAMED_IN_MESSAGE * 2).join(', ');
  return names.length > NAMED_IN_MESSAGE * 2 ? `${shown}, …` : shown;
}

function count<T>(items: readonly T[], pred: (item: T) => boolean): number {
  return items.reduce((n, item) => n + (pred(item) ? 1 : 0), 0);
}

function base(
  input: RolloutInput,
  phase: RolloutPhase,
  assignments: Map<string, Assignment>,
): Omit<RolloutDecision, 'successful' | 'failures' | 'message'> {
  return {
    phase,
    assignments,
    memory: input.memory,
    started: [],
    updated: count(input.devices, onTarget),
    events: [],
  };
}
