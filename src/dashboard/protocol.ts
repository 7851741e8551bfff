/**
 * What the dashboard's server sends its page: the shapes of the server-sent events. Shared by
 * the server and the UI (type-only imports), so neither can drift from the other.
 */

/** The SSE event names. */
export const Events = {
  fleet: 'fleet',
  device: 'device',
  deployments: 'deployments',
  telemetry: 'telemetry',
  log: 'log',
  /** The user may not read something the view needs, or the API server is unreachable. */
  failure: 'failure',
} as const;

/** A device's connection, as EdgeDevice status.phase says. */
export type Phase = 'Connected' | 'Disconnected' | 'Pending';

/** Filters of the fleet view, applied by the server. */
export interface FleetQuery {
  /** Substring of `namespace/name`, case-insensitive. */
  search: string;
  /** Only devices in this phase; empty for all. */
  phase: Phase | '';
  /** Label key to group by; empty for no grouping. */
  groupBy: string;
}

/** One device row of the fleet list. */
export interface FleetRow {
  namespace: string;
  name: string;
  phase: Phase;
  /** ISO time the device was last heard from. */
  lastSeen?: string;
  /** Running modules over desired, e.g. `2/2`. */
  modules?: string;
  /** The value of the group label; empty when the device lacks it. */
  group: string;
}

/** Device counts by phase. */
export type PhaseCounts = Record<Phase, number>;

/** A group of the fleet view with its counts; rows follow in the same order. */
export interface FleetGroup {
  value: string;
  counts: PhaseCounts;
}

/** The fleet view: counts over the whole fleet, then the filtered rows grouped and sorted. */
export interface FleetView {
  total: number;
  counts: PhaseCounts;
  /** Label keys present on devices, to group by. */
  labelKeys: string[];
  groups: FleetGroup[];
  /** Rows matching the query, sorted by group, then namespace/name. */
  rows: FleetRow[];
}

/** One module of a device, from EdgeDevice status and the pod that runs it. */
export interface ModuleView {
  name: string;
  /** The module's IoT Hub id (its twin's name) when it is not `name`. */
  moduleId?: string;
  image?: string;
  status?: string;
  restarts?: number;
  exitCode?: number;
  lastExit?: string;
  lastStart?: string;
  description?: string;
  /** The pod and container whose log is the module's log. */
  pod?: { namespace: string; name: string; container: string };
}

/** The device page. */
export interface DeviceView {
  namespace: string;
  name: string;
  phase: Phase;
  lastSeen?: string;
  connectedSince?: string;
  nodeName?: string;
  agentVersion?: string;
  runtime?: string;
  platform?: string;
  labels: Record<string, string>;
  modules: ModuleView[];
  conditions: { type: string; status: string; reason?: string; message?: string }[];
}

/** One EdgeDeployment's rollout. */
export interface DeploymentView {
  namespace: string;
  name: string;
  priority: number;
  targeted: number;
  applied: number;
  successful: number;
  failed: number;
  failing: { device: string; module?: string; reason?: string; message?: string }[];
  ready?: { status: string; reason?: string; message?: string };
}

/** Numeric fields of telemetry messages, one point per message. */
export interface TelemetryPoint {
  /** When the cloud stored it, ms since the epoch. */
  t: number;
  device: string;
  /** The module that sent it, when known. */
  module?: string;
  values: Record<string, number>;
}

/** A batch of new telemetry points. */
export interface TelemetryBatch {
  points: TelemetryPoint[];
  /** Devices whose telemetry the stream follows (a deployment's targets, capped). */
  devices: string[];
}

/** Lines of a module's log. */
export interface LogLines {
  lines: string[];
}

/** Why a view cannot be shown. */
export interface Failure {
  status: number;
  message: string;
}
