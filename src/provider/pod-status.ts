import type { ModuleReport } from '../common/cloudlink/protocol.js';
import type { ContainerStatus, PodSpec, PodStatus } from './pod-types.js';

/** Module states after which the agent will not start the container again by itself. */
const FINAL_STATES = new Set(['stopped', 'failed', 'dead']);

/** What the controller knows when it computes a pod's status. */
export interface PodStatusInput {
  spec: PodSpec;
  /** Reports of this pod's containers, by container name. */
  modules: Map<string, ModuleReport>;
  /** The device's address, shown as hostIP. */
  hostIP: string;
  /** When the pod was first seen running on the device. */
  startTime?: string;
  now: string;
}

/** Pod status mirroring what the device reports: phase, conditions, containerStatuses. */
export function podStatusFromModules(input: PodStatusInput): PodStatus {
  const statuses = input.spec.containers.map((c) =>
    containerStatus(c.name, c.image, input.modules.get(c.name)),
  );
  const phase = podPhase(input.spec.containers.map((c) => input.modules.get(c.name)));
  const allReady = statuses.every((s) => s.ready);
  const condition = (
    type: string,
    ok: boolean,
    reason?: string,
  ): PodStatus['conditions'] extends (infer C)[] | undefined ? C : never => ({
    type,
    status: ok ? 'True' : 'False',
    lastTransitionTime: input.now,
    ...(ok || !reason ? {} : { reason }),
  });
  return {
    phase,
    hostIP: input.hostIP,
    podIP: input.hostIP,
    startTime: input.startTime ?? input.now,
    containerStatuses: statuses,
    conditions: [
      condition('PodScheduled', true),
      condition('Initialized', true),
      condition('ContainersReady', allReady, 'ContainersNotReady'),
      condition('Ready', allReady, 'ContainersNotReady'),
    ],
  };
}

type StatusBase = Omit<ContainerStatus, 'ready' | 'state'>;

function containerStatus(
  name: string,
  image: string,
  report: ModuleReport | undefined,
): ContainerStatus {
  if (!report) return waiting({ name, image, imageID: '', restartCount: 0 }, 'ContainerCreating');
  const base = statusBase(name, image, report);
  switch (report.runtimeStatus) {
    case 'running':
    case 'unhealthy':
      return runningStatus(base, report);
    case 'backoff':
      return {
        ...waiting(base, report.reason ?? 'CrashLoopBackOff', report.statusDescription),
        ...lastState(report),
      };
    case 'unknown':
      return waiting(base, report.reason ?? 'ContainerCreating', report.statusDescription);
    default:
      return terminatedStatus(base, report);
  }
}

function statusBase(name: string, image: string, report: ModuleReport): StatusBase {
  return {
    name,
    image: report.image ?? image,
    imageID: report.imageID ?? '',
    ...(report.containerID ? { containerID: report.containerID } : {}),
    restartCount: report.restartCount,
  };
}

function waiting(base: StatusBase, reason: string, message?: string): ContainerStatus {
  return {
    ...base,
    ready: false,
    started: false,
    state: { waiting: message === undefined ? { reason } : { reason, message } },
  };
}

function runningStatus(base: StatusBase, report: ModuleReport): ContainerStatus {
  const ready = report.runtimeStatus === 'running';
  return {
    ...base,
    ready,
    started: true,
    state: { running: { startedAt: report.lastStartTimeUtc } },
    ...lastState(report),
  };
}

function lastState(report: ModuleReport): Pick<ContainerStatus, 'lastState'> {
  if (!report.lastExitTimeUtc) return {};
  const exitCode = report.exitCode ?? 0;
  return {
    lastState: {
      terminated: { exitCode, finishedAt: report.lastExitTimeUtc, reason: exitReason(exitCode) },
    },
  };
}

function terminatedStatus(
  base: Omit<ContainerStatus, 'ready' | 'state'>,
  report: ModuleReport,
): ContainerStatus {
  if (report.reason && !report.lastStartTimeUtc) {
    // Never started: an image pull or create failure.
    return {
      ...base,
      ready: false,
      started: false,
      state: { waiting: { reason: report.reason, message: report.statusDescription } },
    };
  }
  return {
    ...base,
    ready: false,
    started: false,
    state: {
      terminated: {
        exitCode: report.exitCode ?? 0,
        reason: report.reason ?? exitReason(report.exitCode),
        message: report.statusDescription,
        startedAt: report.lastStartTimeUtc,
        finishedAt: report.lastExitTimeUtc,
      },
    },
  };
}

function exitReason(exitCode: number | undefined): string {
  return (exitCode ?? 0) === 0 ? 'Completed' : 'Error';
}

function podPhase(reports: (ModuleReport | undefined)[]): NonNullable<PodStatus['phase']> {
  if (reports.some((r) => r?.runtimeStatus === 'running' || r?.runtimeStatus === 'unhealthy'))
    return 'Running';
  const allFinal = reports.every(
    (r) => r && FINAL_STATES.has(r.runtimeStatus) && r.lastStartTimeUtc,
  );
  if (allFinal)
    return reports.every((r) => (r?.exitCode ?? 0) === 0 && r?.runtimeStatus !== 'failed')
      ? 'Succeeded'
      : 'Failed';
  if (reports.some((r) => r?.runtimeStatus === 'backoff' && r.lastStartTimeUtc)) return 'Running';
  return 'Pending';
}
