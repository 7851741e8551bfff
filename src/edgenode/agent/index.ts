/**
 * The kedge device agent: runs the modules of an IoT Edge deployment manifest on Docker (default)
 * or as local processes, with edgeAgent's restart policies, and reports their state.
 */
export { Agent, DEFAULT_RESYNC_INTERVAL_MS, DEFAULT_STOP_GRACE_MS } from './agent.js';
export type { AgentOptions, ApplyResult } from './agent.js';
export * from './backoff.js';
export {
  DEFAULT_FILE_POLL_MS,
  FileDesiredStateSource,
  readManifestFile,
  type DesiredHandler,
  type DesiredMeta,
  type DesiredStateSource,
} from './desired-source.js';
export { DockerRuntime, type DockerRuntimeOptions } from './docker-runtime.js';
export { LABELS } from './docker-create.js';
export { AgentMetrics } from './metrics.js';
export type {
  AgentEvent,
  AgentSnapshot,
  DesiredStatusReport,
  DeviceReport,
  ModuleReport,
} from './reported.js';
export { RuntimeError, type ModuleRuntime, type PullRequest } from './runtime.js';
export type * from './types.js';
