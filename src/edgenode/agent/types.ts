import type { DesiredStatus, RestartPolicy } from '../../common/manifest/index.js';

/** Module status as reported, with IoT Edge's vocabulary. */
export type RuntimeStatus =
  'unknown' | 'backoff' | 'running' | 'unhealthy' | 'stopped' | 'failed' | 'dead';

/**
 * Why a module is not running, in Kubernetes' words, so that pod status can mirror it:
 * `ErrImagePull`, `ErrImageNeverPull`, `CrashLoopBackOff`, `CreateContainerError`,
 * `StartError`, `Unhealthy`.
 */
export type StatusReason =
  | 'ErrImagePull'
  | 'ErrImageNeverPull'
  | 'CrashLoopBackOff'
  | 'CreateContainerError'
  | 'StartError'
  | 'Unhealthy';

/** Everything a runtime needs to create one module instance. */
export interface ModuleSpec {
  /** Container (or process) name: the manifest key. */
  name: string;
  /** IoT Hub module id; containers also answer to it as a network alias. */
  moduleId: string;
  image: string;
  /** Docker `ContainerCreate` options from the manifest (the process runtime reads a subset). */
  createOptions: Record<string, unknown>;
  /** Manifest env merged with the IoT Edge identity env. */
  env: Record<string, string>;
  /** Hash of everything above; a different hash means the instance must be recreated. */
  configHash: string;
  restartPolicy: RestartPolicy;
  desiredStatus: DesiredStatus;
  /** The cluster's spec hash from the manifest, echoed in reports; not part of `configHash`. */
  specHash?: string;
}

/** Runtime-level state of an instance (Docker's `State.Status` vocabulary). */
export type InstanceState =
  'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** Health as Docker reports it; `none` when there is no health check. */
export type HealthState = 'none' | 'starting' | 'healthy' | 'unhealthy';

/** One module instance (container or process) that the runtime found, labelled as ours. */
export interface ObservedModule {
  name: string;
  /** Container ID, or `process:<pid>` for the process runtime. */
  id: string;
  configHash: string;
  state: InstanceState;
  health: HealthState;
  exitCode?: number;
  /** The runtime's own error text for the last failed start, if any. */
  error?: string;
  startedAt?: Date;
  finishedAt?: Date;
  image: string;
  imageId?: string;
}

/** Options for reading module logs. */
export interface LogOptions {
  /** Only the last `tail` lines. Defaults to all. */
  tail?: number;
  /** Only lines written at or after this time. */
  since?: Date;
  /** Prefix each line with its RFC 3339 time. Defaults to false. */
  timestamps?: boolean;
  /** Keep the stream open and emit new lines. Defaults to false. */
  follow?: boolean;
}

/** Name and version of a runtime, reported per device. */
export interface RuntimeInfo {
  name: 'docker' | 'process';
  version: string;
}

/** CPU and memory of one running instance. */
export interface InstanceUsage {
  /** When it was read, epoch ms. */
  atMs: number;
  /** CPU time since the instance started, seconds. */
  cpuSecs: number;
  /** Memory working set, bytes. */
  memoryWorkingSetBytes: number;
}
