import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import type { DesiredStatus } from '../../common/manifest/index.js';
import { KEDGE_VERSION } from '../../common/version.js';
import type { RuntimeInfo, RuntimeStatus, StatusReason } from './types.js';

/** What the agent reports per module (IoT Edge's `$edgeAgent` reported `modules.<m>`). */
export interface ModuleReport {
  name: string;
  runtimeStatus: RuntimeStatus;
  /** Kubernetes-style reason when not running normally (`ErrImagePull`, `CrashLoopBackOff`…). */
  reason?: StatusReason;
  statusDescription?: string;
  /** Exit code of the last exit, when the module is not running. */
  exitCode?: number;
  /** Restarts done by the agent under the current configuration. */
  restartCount: number;
  lastStartTimeUtc?: string;
  lastExitTimeUtc?: string;
  lastRestartTimeUtc?: string;
  desiredStatus: DesiredStatus;
  /** Image reference as desired. */
  image: string;
  /** Image ID actually running (`sha256:…`), when known. */
  imageId?: string;
  /** Container ID or `process:<pid>`. */
  instanceId?: string;
  /**
   * The cluster's spec hash of the desired module this status is about (from the manifest), so
   * the cluster counts a device as running a spec only once it reports that spec.
   */
  specHash?: string;
  /** When the agent last began pulling the module's image for this configuration. */
  pullStartedTimeUtc?: string;
}

/** Facts about the device, for the Node's capacity and nodeInfo. */
export interface DeviceReport {
  /** `os.platform()`, e.g. `linux`. */
  os: string;
  /** Kernel release. */
  osVersion: string;
  /** `PRETTY_NAME` of /etc/os-release, e.g. `Debian GNU/Linux 12 (bookworm)`. */
  osImage?: string;
  /** Node.js' architecture name, e.g. `x64`, `arm64`. */
  architecture: string;
  cpus: number;
  memoryBytes: number;
  /** Size and free space of the file system holding the data directory. */
  diskBytes: number;
  diskFreeBytes: number;
  runtime: RuntimeInfo;
  kedgeVersion: string;
}

/** Outcome of the last desired state, with IoT Edge's status codes. */
export interface DesiredStatusReport {
  /** 200 applied; 400 rejected as invalid; 500 applied with module failures. */
  code: 200 | 400 | 500;
  description: string;
}

/** The whole reported state. */
export interface AgentSnapshot {
  deviceId: string;
  device?: DeviceReport;
  modules: Record<string, ModuleReport>;
  lastDesiredVersion?: string;
  lastDesiredStatus?: DesiredStatusReport;
  updatedAtUtc: string;
}

/** A change in the reported state, for the cloud link. */
export type AgentEvent =
  | { type: 'module'; module: ModuleReport }
  | { type: 'module-removed'; name: string }
  | { type: 'desired'; lastDesiredVersion?: string; lastDesiredStatus: DesiredStatusReport }
  | { type: 'device'; device: DeviceReport };

/** Reads the device facts; `dataDir` decides which file system's size is reported. */
export async function readDeviceReport(
  dataDir: string,
  runtime: RuntimeInfo,
): Promise<DeviceReport> {
  const fs = await statfs(dataDir);
  const osImage = await readOsImage();
  return {
    os: os.platform(),
    osVersion: os.release(),
    ...(osImage ? { osImage } : {}),
    architecture: os.arch(),
    cpus: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    diskBytes: fs.blocks * fs.bsize,
    diskFreeBytes: fs.bavail * fs.bsize,
    runtime,
    kedgeVersion: KEDGE_VERSION,
  };
}

async function readOsImage(): Promise<string | undefined> {
  const text = await readFile('/etc/os-release', 'utf8').catch(() => '');
  return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1];
}
