import type { DeviceFacts } from '../../common/cloudlink/facts.js';
import type {
  ModuleReport as WireModule,
  ReportedMessage,
} from '../../common/cloudlink/protocol.js';
import type { AgentSnapshot, DeviceReport, ModuleReport } from '../agent/index.js';

/** Node.js architecture names to the Kubernetes (GOARCH) names Nodes use. */
const GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
};

/** Device facts for the Node, from the agent's device report. */
export function factsFrom(device: DeviceReport | undefined, hostname: string): DeviceFacts {
  if (!device) {
    return {
      os: 'linux',
      arch: '',
      cpus: 0,
      memoryBytes: 0,
      diskBytes: 0,
      hostname,
      containerRuntimeVersion: '',
      agentVersion: '',
    };
  }
  return {
    os: device.os,
    arch: GOARCH[device.architecture] ?? device.architecture,
    cpus: device.cpus,
    memoryBytes: device.memoryBytes,
    diskBytes: device.diskBytes,
    kernelVersion: device.osVersion,
    ...(device.osImage ? { osImage: device.osImage } : {}),
    hostname,
    containerRuntimeVersion: `${device.runtime.name}://${device.runtime.version}`,
    agentVersion: device.kedgeVersion,
  };
}

function wireModule(m: ModuleReport, runtime: string): WireModule {
  return {
    name: m.name,
    image: m.image,
    ...(m.imageId ? { imageID: m.imageId } : {}),
    ...(m.instanceId
      ? {
          containerID: m.instanceId.includes('://')
            ? m.instanceId
            : `${runtime}://${m.instanceId.replace(/^process:/, '')}`,
        }
      : {}),
    runtimeStatus: m.runtimeStatus,
    restartCount: m.restartCount,
    ...(m.exitCode !== undefined ? { exitCode: m.exitCode } : {}),
    ...(m.statusDescription ? { statusDescription: m.statusDescription } : {}),
    ...(m.reason ? { reason: m.reason } : {}),
    ...(m.specHash ? { specHash: m.specHash } : {}),
    ...(m.lastStartTimeUtc ? { lastStartTimeUtc: m.lastStartTimeUtc } : {}),
    ...(m.lastExitTimeUtc ? { lastExitTimeUtc: m.lastExitTimeUtc } : {}),
    ...(m.lastRestartTimeUtc ? { lastRestartTimeUtc: m.lastRestartTimeUtc } : {}),
    ...(m.pullStartedTimeUtc ? { pullStartedTimeUtc: m.pullStartedTimeUtc } : {}),
  };
}

/** The reported message for the controller, from the agent snapshot. */
export function reportFrom(snapshot: AgentSnapshot, hostname: string): ReportedMessage {
  const status = snapshot.lastDesiredStatus;
  const runtime = snapshot.device?.runtime.name ?? 'docker';
  return {
    desiredVersion: Number.parseInt(snapshot.lastDesiredVersion ?? '0', 10) || 0,
    outcome: !status
      ? { status: 'pending' }
      : { status: status.code === 400 ? 'rejected' : 'applied', message: status.description },
    facts: factsFrom(snapshot.device, hostname),
    modules: Object.values(snapshot.modules).map((m) => wireModule(m, runtime)),
    at: new Date().toISOString(),
  };
}
