import type { ModuleReport } from '../common/cloudlink/protocol.js';
import type { ContainerStatus, PodStatus } from '../provider/pod-types.js';
import type { EventType } from './events.js';

/** An Event to record on a pod. */
export interface PodEvent {
  type: EventType;
  reason: string;
  message: string;
}

/**
 * The kubelet's container lifecycle Events (`Pulled`, `Created`, `Started`, `BackOff`, `Failed`,
 * `Unhealthy`) for what changed between the status a pod has and the one about to be written.
 * The device reports states, not steps, so a step is told when its result first shows: a new
 * container ID is a pulled image and a created and started container, a higher restart count is
 * a restart. `Pulling` is the exception, told as it begins: {@link pullingEvents}.
 */
export function podLifecycleEvents(
  podName: string,
  previous: PodStatus | undefined,
  next: PodStatus,
): PodEvent[] {
  const before = new Map((previous?.containerStatuses ?? []).map((c) => [c.name, c]));
  return (next.containerStatuses ?? []).flatMap((c) =>
    containerEvents(podName, before.get(c.name), c),
  );
}

interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: unknown;
  terminated?: unknown;
}

function containerEvents(
  podName: string,
  old: ContainerStatus | undefined,
  cs: ContainerStatus,
): PodEvent[] {
  const state = cs.state as ContainerState;
  const oldState = old?.state as ContainerState | undefined;
  return [
    ...startEvents(old, cs, state),
    ...waitingEvents(podName, old, cs, { state, oldState }),
    ...healthEvents(old, cs, { state, oldState }),
  ];
}

/** A new instance is a pulled image and a created container; it or a restart is a start. */
function startEvents(
  old: ContainerStatus | undefined,
  cs: ContainerStatus,
  state: ContainerState,
): PodEvent[] {
  const events: PodEvent[] = [];
  const fresh = newInstance(old, cs);
  if (fresh) {
    if (cs.imageID && cs.imageID !== old?.imageID)
      events.push(normal('Pulled', `Container image "${cs.image}" is on the device`));
    events.push(normal('Created', `Created container ${cs.name}`));
  }
  const ran = state.running !== undefined || cs.lastState?.terminated !== undefined;
  if ((fresh || restarted(old, cs)) && ran)
    events.push(normal('Started', `Started container ${cs.name}`));
  return events;
}

function newInstance(old: ContainerStatus | undefined, cs: ContainerStatus): boolean {
  return cs.containerID !== undefined && cs.containerID !== old?.containerID;
}

function restarted(old: ContainerStatus | undefined, cs: ContainerStatus): boolean {
  return old !== undefined && cs.restartCount > old.restartCount;
}

interface States {
  state: ContainerState;
  oldState: ContainerState | undefined;
}

interface WaitingRule {
  /** Told again on every restart, not only when the reason first shows. */
  everyRestart?: boolean;
  event(cs: ContainerStatus, podName: string, detail: string | undefined): PodEvent;
}

const failedToStart: WaitingRule = {
  event: (cs, _pod, detail) =>
    warning('Failed', withDetail(`Error: ${waitingReason(cs) ?? ''}`, detail)),
};

/** The waiting reasons that are Events, and how each is told. */
const WAITING_RULES: Record<string, WaitingRule> = {
  CrashLoopBackOff: {
    everyRestart: true,
    event: (cs, pod) =>
      warning('BackOff', `Back-off restarting failed container ${cs.name} in pod ${pod}`),
  },
  ImagePullBackOff: { event: (cs) => normal('BackOff', `Back-off pulling image "${cs.image}"`) },
  ErrImagePull: {
    event: (cs, _pod, detail) =>
      warning('Failed', withDetail(`Failed to pull image "${cs.image}"`, detail)),
  },
  ErrImageNeverPull: failedToStart,
  CreateContainerError: failedToStart,
  StartError: failedToStart,
};

function waitingReason(cs: ContainerStatus): string | undefined {
  return (cs.state as ContainerState).waiting?.reason;
}

/** Why a container waits, told when the reason first shows (a crash loop: on each restart). */
function waitingEvents(
  podName: string,
  old: ContainerStatus | undefined,
  cs: ContainerStatus,
  { state, oldState }: States,
): PodEvent[] {
  const reason = state.waiting?.reason;
  const rule = reason === undefined ? undefined : WAITING_RULES[reason];
  if (!rule) return [];
  const fresh =
    reason !== oldState?.waiting?.reason || (rule.everyRestart === true && restarted(old, cs));
  return fresh ? [rule.event(cs, podName, state.waiting?.message)] : [];
}

/** A running container that stopped being ready failed its health check. */
function healthEvents(
  old: ContainerStatus | undefined,
  cs: ContainerStatus,
  { state, oldState }: States,
): PodEvent[] {
  const unhealthy = state.running !== undefined && !cs.ready;
  const wasUnhealthy = oldState?.running !== undefined && !old?.ready;
  return unhealthy && !wasUnhealthy
    ? [warning('Unhealthy', `Container ${cs.name} failed its health check`)]
    : [];
}

function withDetail(message: string, detail: string | undefined): string {
  return detail ? `${message}: ${detail}` : message;
}

/**
 * A pull older than this when first seen is not told: after a controller restart the reports
 * still carry the last pull of every module, which was told before.
 */
export const PULL_NEWS_MS = 10 * 60_000;

/**
 * `Pulling` for each of the pod's containers whose module reports a pull not told yet.
 * `told` (module → the pull start already told) is updated.
 */
export function pullingEvents(
  containers: readonly string[],
  modules: ReadonlyMap<string, ModuleReport>,
  told: Map<string, string>,
  nowMs: number,
): PodEvent[] {
  const events: PodEvent[] = [];
  for (const name of containers) {
    const module = modules.get(name);
    const started = module?.pullStartedTimeUtc;
    if (!module || !started || told.get(name) === started) continue;
    told.set(name, started);
    if (nowMs - Date.parse(started) <= PULL_NEWS_MS)
      events.push(normal('Pulling', `Pulling image "${module.image ?? ''}"`));
  }
  return events;
}

function normal(reason: string, message: string): PodEvent {
  return { type: 'Normal', reason, message };
}

function warning(reason: string, message: string): PodEvent {
  return { type: 'Warning', reason, message };
}
