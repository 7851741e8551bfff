import type { EdgeDevice, EdgeDeviceStatus } from '../crds/index.js';
import { nodeNameFor } from '../provider/naming.js';
import type { ControllerContext } from './context.js';
import { mergeConditions, sameConditions, type ConditionInput } from './conditions.js';
import { credentialsAccepted } from './device-keys.js';
import type { DeviceState } from './device-state.js';
import { Resources } from './kube/client.js';
import { recentlyWritten } from './recent-writes.js';
import { kubeTime } from './kube/time.js';

/** Modules listed in status at most, so a large device keeps its object small. */
const MAX_STATUS_MODULES = 64;
/** lastSeen is written at most this often while nothing else changes. */
const LAST_SEEN_WRITE_INTERVAL_MS = 30_000;
/**
 * Progress in a device's status is written at most this often. A rollout changes it several
 * times within a second (desired version, applied version, each module starting); the changes in
 * between are folded into one write, which over a fleet halves the status writes. A change of
 * phase or conditions (connected, ready) is written at once.
 */
export const DEVICE_STATUS_MIN_INTERVAL_MS = 2_000;

/**
 * Writes the EdgeDevice status when anything a user would see has changed. Returns how long to
 * wait before looking again when the write was held back, else 0.
 */
export async function updateDeviceStatus(
  ctx: ControllerContext,
  device: EdgeDevice,
  state: DeviceState,
  desiredModules: number,
): Promise<number> {
  const status = deviceStatus(device, state, desiredModules);
  if (!changed(device.status, status)) return 0;
  const signature = JSON.stringify({
    ...status,
    lastSeen: undefined,
    conditions: status.conditions?.map(({ lastTransitionTime: _t, ...c }) => c),
  });
  if (recentlyWritten(state.lastStatus, signature)) return 0;
  const transition =
    device.status?.phase !== status.phase ||
    !sameConditions(device.status?.conditions, status.conditions);
  const waitMs = (state.statusWrittenAt ?? 0) + DEVICE_STATUS_MIN_INTERVAL_MS - Date.now();
  if (!transition && waitMs > 0) return waitMs;
  state.statusWrittenAt = Date.now();
  state.lastStatus = { signature, at: Date.now() };
  await ctx.client.patch(
    Resources.edgeDevices(device.metadata.namespace),
    device.metadata.name!,
    { status },
    { subresource: 'status' },
  );
  // The cache can lag a quick drop and return; the phase last written is the one users saw.
  recordPresence(ctx, device, state.writtenPhase ?? device.status?.phase, status.phase);
  state.writtenPhase = status.phase;
  return 0;
}

/** `Connected` and `Disconnected` Events when the phase the device shows changes between them. */
function recordPresence(
  ctx: ControllerContext,
  device: EdgeDevice,
  from: string | undefined,
  to: string | undefined,
): void {
  if (from === to) return;
  if (to === 'Connected')
    ctx.events.record(device, 'Normal', 'Connected', 'device connected to a gateway');
  else if (to === 'Disconnected' && from === 'Connected')
    ctx.events.record(device, 'Warning', 'Disconnected', 'device lost its gateway connection');
}

function deviceStatus(
  device: EdgeDevice,
  state: DeviceState,
  desiredModules: number,
): EdgeDeviceStatus {
  const modules = state.report?.modules ?? [];
  const running = modules.filter((m) => m.runtimeStatus === 'running').length;
  const failing = modules.filter((m) => FAILING.has(m.runtimeStatus)).map((m) => m.name);
  const phase = state.connected ? 'Connected' : state.lastSeen ? 'Disconnected' : 'Pending';
  return {
    observedGeneration: device.metadata.generation,
    phase,
    nodeName: nodeNameFor(device.metadata.namespace!, device.metadata.name!),
    desiredVersion: state.desiredVersion,
    moduleSummary: `${running}/${desiredModules}`,
    ...(state.lastSeen ? { lastSeen: kubeTime(state.lastSeen) } : {}),
    ...(state.connected && state.since ? { connectedSince: kubeTime(state.since) } : {}),
    ...(state.report ? factsStatus(state) : {}),
    conditions: mergeConditions(
      device.status?.conditions,
      deviceConditions(device, state, phase, failing),
      device.metadata.generation,
    ),
  };
}

const FAILING = new Set(['failed', 'backoff', 'unhealthy', 'dead']);

function factsStatus(state: DeviceState): Partial<EdgeDeviceStatus> {
  const report = state.report!;
  const f = report.facts;
  return {
    appliedVersion: report.desiredVersion,
    agentVersion: f.agentVersion,
    containerRuntime: f.containerRuntimeVersion,
    os: f.os,
    arch: f.arch,
    capacity: {
      cpu: f.cpus,
      memory: f.memoryBytes,
      storage: f.diskBytes,
      ...(f.maxModules ? { pods: f.maxModules } : {}),
    },
    modules: report.modules.slice(0, MAX_STATUS_MODULES).map((m) => ({
      name: m.name,
      ...(m.image ? { image: m.image } : {}),
      ...(m.imageID ? { imageID: m.imageID } : {}),
      runtimeStatus: m.runtimeStatus,
      restartCount: m.restartCount,
      ...(m.exitCode !== undefined ? { exitCode: m.exitCode } : {}),
      ...(m.lastStartTimeUtc ? { lastStartTimeUtc: m.lastStartTimeUtc } : {}),
      ...(m.lastExitTimeUtc ? { lastExitTimeUtc: m.lastExitTimeUtc } : {}),
      ...(m.lastRestartTimeUtc ? { lastRestartTimeUtc: m.lastRestartTimeUtc } : {}),
      ...(m.statusDescription ? { statusDescription: m.statusDescription.slice(0, 1024) } : {}),
    })),
  };
}

function deviceConditions(
  device: EdgeDevice,
  state: DeviceState,
  phase: string,
  failing: string[],
): ConditionInput[] {
  const connected: ConditionInput = state.connected
    ? {
        type: 'Connected',
        status: 'True',
        reason: 'Heartbeating',
        message: 'kedge node is connected',
      }
    : {
        type: 'Connected',
        status: 'False',
        reason: phase === 'Pending' ? 'NeverConnected' : 'HeartbeatLost',
        message: 'kedge node is not connected',
      };
  const healthy: ConditionInput =
    failing.length === 0
      ? {
          type: 'ModulesHealthy',
          status: 'True',
          reason: 'AllModulesHealthy',
          message: 'no module reports a failure',
        }
      : {
          type: 'ModulesHealthy',
          status: 'False',
          reason: 'ModulesFailing',
          message: `failing: ${failing.join(', ')}`,
        };
  const credentials: ConditionInput = state.keyRefusal
    ? { type: 'Credentials', status: 'False', ...state.keyRefusal }
    : { type: 'Credentials', status: 'True', ...credentialsAccepted(device) };
  const node: ConditionInput = state.nodeRefusal
    ? { type: 'NodeOwned', status: 'False', ...state.nodeRefusal }
    : {
        type: 'NodeOwned',
        status: 'True',
        reason: 'NodeOwned',
        message: "the device Node is kedge's",
      };
  // The first failing condition explains Ready: key, Node, connection, then modules.
  const cause = [credentials, node, connected, healthy].find((c) => c.status !== 'True') ?? healthy;
  const ready: ConditionInput = {
    type: 'Ready',
    status: cause.status === 'True' ? 'True' : 'False',
    reason: cause.reason,
    message: cause.message,
  };
  return [ready, credentials, node, connected, healthy];
}

function changed(before: EdgeDeviceStatus | undefined, after: EdgeDeviceStatus): boolean {
  if (!before) return true;
  const { conditions: c1, lastSeen: s1, ...rest1 } = before;
  const { conditions: c2, lastSeen: s2, ...rest2 } = after;
  if (!sameConditions(c1, c2) || JSON.stringify(rest1) !== JSON.stringify(rest2)) return true;
  if (!s2) return false;
  return !s1 || Date.parse(s2) - Date.parse(s1) >= LAST_SEEN_WRITE_INTERVAL_MS;
}
