/** The kedge hub: an IoT Hub–compatible local MQTT hub with routes and store-and-forward. */
export { Hub, type HubConfigUpdate, type HubPorts } from './hub.js';
export { HubModuleIdentityProvider, type ModuleEndpoints } from './identity-provider.js';
export { HubMetrics, type DropReason } from './metrics.js';
export type { MethodResult } from './methods.js';
export {
  HUB_DEFAULTS,
  hubOptionsSchema,
  resolveHubOptions,
  type HubLimits,
  type HubOptions,
  type HubOptionsInput,
  type LeafDeviceOptions,
  type StoreAndForwardOptions,
  type UpstreamOptions,
} from './options.js';
export type { DurableQueue, NewQueueItem, QueueItem, QueueStats } from './queue/durable-queue.js';
export { MemoryQueue } from './queue/memory-queue.js';
export { SqliteQueue } from './queue/sqlite-queue.js';
export { MqttUpstream } from './upstream/mqtt-upstream.js';
export { FileUpstream, NoUpstream, StdoutUpstream } from './upstream/sinks.js';
export {
  UpstreamBase,
  type DownstreamHandlers,
  type Target,
  type Upstream,
  type UpstreamMessage,
} from './upstream/upstream.js';
