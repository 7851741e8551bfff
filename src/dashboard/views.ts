/**
 * Pure functions from Kubernetes objects (and stored telemetry) to what the dashboard shows. The
 * server filters and groups here, so the page gets only the rows it shows.
 */
import type { EdgeDeployment, EdgeDevice, EdgeDeviceStatus } from '../crds/index.js';
import type { StoredTelemetry } from '../controller/backend/device-backend.js';
import type { KubeObject } from '../controller/kube/client.js';
import { moduleIdOf } from '../provider/translate.js';
import type {
  DeploymentView,
  DeviceView,
  FleetGroup,
  FleetQuery,
  FleetRow,
  FleetView,
  ModuleView,
  Phase,
  PhaseCounts,
  TelemetryPoint,
} from './protocol.js';

/** Label keys offered for grouping at most, so a fleet with per-device labels stays readable. */
const MAX_LABEL_KEYS = 50;
/** Nested telemetry objects are flattened this deep (`machine.temperature`). */
const MAX_FIELD_DEPTH = 2;

const zeroCounts = (): PhaseCounts => ({ Connected: 0, Disconnected: 0, Pending: 0 });

function phaseOf(device: EdgeDevice): Phase {
  return device.status?.phase ?? 'Pending';
}

/** The fleet view of `devices` under `query`. */
export function fleetView(devices: Iterable<EdgeDevice>, query: FleetQuery): FleetView {
  const counts = zeroCounts();
  const keys = new Set<string>();
  const groups = new Map<string, PhaseCounts>();
  const rows: FleetRow[] = [];
  const search = query.search.trim().toLowerCase();
  let total = 0;
  for (const device of devices) {
    total++;
    const phase = phaseOf(device);
    counts[phase]++;
    const labels = device.metadata.labels ?? {};
    for (const key of Object.keys(labels)) if (keys.size < MAX_LABEL_KEYS) keys.add(key);
    const id = `${device.metadata.namespace}/${device.metadata.name}`;
    if (search && !id.toLowerCase().includes(search)) continue;
    if (query.phase && phase !== query.phase) continue;
    const group = query.groupBy ? (labels[query.groupBy] ?? '') : '';
    const groupCounts = groups.get(group) ?? zeroCounts();
    groupCounts[phase]++;
    groups.set(group, groupCounts);
    rows.push(fleetRow(device, phase, group));
  }
  rows.sort((a, b) => compareGroups(a.group, b.group) || compareIds(a, b));
  const sortedGroups: FleetGroup[] = [...groups]
    .sort(([a], [b]) => compareGroups(a, b))
    .map(([value, c]) => ({ value, counts: c }));
  return { total, counts, labelKeys: [...keys].sort(), groups: sortedGroups, rows };
}

function fleetRow(device: EdgeDevice, phase: Phase, group: string): FleetRow {
  return {
    namespace: device.metadata.namespace ?? '',
    name: device.metadata.name ?? '',
    phase,
    ...(device.status?.lastSeen ? { lastSeen: device.status.lastSeen } : {}),
    ...(device.status?.moduleSummary ? { modules: device.status.moduleSummary } : {}),
    group,
  };
}

/** Devices without the label go last. */
function compareGroups(a: string, b: string): number {
  if (a === b) return 0;
  if (!a) return 1;
  if (!b) return -1;
  return a < b ? -1 : 1;
}

function compareIds(a: FleetRow, b: FleetRow): number {
  const x = `${a.namespace}/${a.name}`;
  const y = `${b.namespace}/${b.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A pod as far as the device view reads it. */
export interface PodLike extends KubeObject {
  spec?: { containers?: { name: string; image?: string }[] };
}

/** The device page: its status, and for each module the pod container that runs it. */
export function deviceView(device: EdgeDevice, pods: Iterable<PodLike>): DeviceView {
  const status = device.status ?? {};
  return {
    namespace: device.metadata.namespace ?? '',
    name: device.metadata.name ?? '',
    phase: phaseOf(device),
    lastSeen: status.lastSeen,
    connectedSince: status.connectedSince,
    nodeName: status.nodeName,
    agentVersion: status.agentVersion,
    runtime: status.containerRuntime,
    platform: status.os && status.arch ? `${status.os}/${status.arch}` : undefined,
    labels: device.metadata.labels ?? {},
    modules: moduleViews(status, containersOf(pods)),
    conditions: (status.conditions ?? []).map(({ type, status: s, reason, message }) => ({
      type,
      status: s,
      reason,
      message,
    })),
  };
}

type PodContainer = NonNullable<ModuleView['pod']> & { moduleId: string };

/** Container name → the pod container of that name (a module's container is named as it). */
function containersOf(pods: Iterable<PodLike>): Map<string, PodContainer> {
  const containers = new Map<string, PodContainer>();
  for (const pod of pods)
    for (const c of pod.spec?.containers ?? [])
      containers.set(c.name, {
        namespace: pod.metadata.namespace ?? '',
        name: pod.metadata.name ?? '',
        container: c.name,
        moduleId: moduleIdOf({ metadata: pod.metadata }, c.name),
      });
  return containers;
}

function moduleViews(
  status: EdgeDeviceStatus,
  containers: Map<string, PodContainer>,
): ModuleView[] {
  return (status.modules ?? [])
    .map((m) => viewOf(m, containers.get(m.name)))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

function viewOf(
  m: NonNullable<EdgeDeviceStatus['modules']>[number],
  container: PodContainer | undefined,
): ModuleView {
  const moduleId = container?.moduleId ?? m.name;
  return {
    name: m.name,
    ...(moduleId !== m.name ? { moduleId } : {}),
    image: m.image,
    status: m.runtimeStatus,
    restarts: m.restartCount,
    exitCode: m.exitCode,
    lastExit: m.lastExitTimeUtc,
    lastStart: m.lastStartTimeUtc,
    description: m.statusDescription,
    pod: container && {
      namespace: container.namespace,
      name: container.name,
      container: container.container,
    },
  };
}

/** An EdgeDeployment's counts and failing devices. */
export function deploymentView(deployment: EdgeDeployment): DeploymentView {
  const status = deployment.status ?? {};
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  return {
    namespace: deployment.metadata.namespace ?? '',
    name: deployment.metadata.name ?? '',
    priority: deployment.spec.priority ?? 0,
    targeted: status.targetedCount ?? 0,
    applied: status.appliedCount ?? 0,
    successful: status.reportedSuccessfulCount ?? 0,
    failed: status.reportedFailedCount ?? 0,
    failing: (status.failingDevices ?? []).map((f) => ({
      device: f.device ?? '',
      module: f.module,
      reason: f.reason,
      message: f.message,
    })),
    ...(ready
      ? { ready: { status: ready.status, reason: ready.reason, message: ready.message } }
      : {}),
  };
}

/** The numeric fields of stored telemetry messages whose body is a JSON object. */
export function telemetryPoints(
  device: string,
  items: readonly StoredTelemetry[],
): TelemetryPoint[] {
  const points: TelemetryPoint[] = [];
  for (const item of items) {
    const message = item.message as {
      body?: string;
      systemProperties?: Record<string, string>;
    } | null;
    if (typeof message?.body !== 'string') continue;
    const values: Record<string, number> = {};
    numericFields(parseJson(Buffer.from(message.body, 'base64').toString('utf8')), '', values, 0);
    if (Object.keys(values).length === 0) continue;
    const module = message.systemProperties?.['$.cmid'];
    points.push({ t: Date.parse(item.storedAt), device, ...(module ? { module } : {}), values });
  }
  return points;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function numericFields(
  value: unknown,
  prefix: string,
  into: Record<string, number>,
  depth: number,
): void {
  if (typeof value === 'number' && Number.isFinite(value) && prefix) into[prefix] = value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  if (depth >= MAX_FIELD_DEPTH) return;
  for (const [key, inner] of Object.entries(value))
    numericFields(inner, prefix ? `${prefix}.${key}` : key, into, depth + 1);
}
