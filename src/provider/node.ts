import type { DeviceFacts } from '../common/cloudlink/facts.js';
import { KEDGE_VERSION } from '../common/version.js';
import type { KubeObject } from '../controller/kube/client.js';
import { isReservedNodeLabel, type EdgeDevice } from '../crds/index.js';
import { DEVICE_REF_ANNOTATION, EDGE_TAINT, Labels, nodeNameFor } from './naming.js';
import { pressureConditions, type PressureConditions } from './pressure.js';

/** Pods a device accepts when it does not say (the kubelet default). */
export const DEFAULT_MAX_PODS = 110;

/** Where the API server reaches the kubelet API for this node. */
export interface KubeletEndpoint {
  address: string;
  port: number;
}

/** Connection state used for the Ready condition. */
export interface DeviceConnection {
  connected: boolean;
  /** ISO time of the last heartbeat. */
  lastSeen?: string;
  since?: string;
}

/** The Node object for a device: labels, taints, capacity, nodeInfo, addresses, conditions. */
export function buildNode(
  device: EdgeDevice,
  facts: DeviceFacts | undefined,
  kubelet: KubeletEndpoint,
): KubeObject & { metadata: { name: string } } {
  const namespace = device.metadata.namespace ?? 'default';
  const name = nodeNameFor(namespace, device.metadata.name!);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: nodeLabels(device, name, facts),
      annotations: { [DEVICE_REF_ANNOTATION]: deviceRef(namespace, device.metadata.name!) },
    },
    spec: {
      taints: [
        EDGE_TAINT,
        ...(device.spec.taints ?? []).map((t) => ({
          key: t.key,
          value: t.value,
          effect: t.effect,
        })),
      ],
    },
    status: nodeStatus(facts, kubelet),
  };
}

/** The value of {@link DEVICE_REF_ANNOTATION} on a device's Node. */
export function deviceRef(namespace: string, device: string): string {
  return `${namespace}/${device}`;
}

/** Whether a Node is the one kedge made for this device (its device-ref annotation says so). */
export function isDeviceNode(
  node: { metadata: { annotations?: Record<string, string> } },
  namespace: string,
  device: string,
): boolean {
  return node.metadata.annotations?.[DEVICE_REF_ANNOTATION] === deviceRef(namespace, device);
}

/** The user's labels minus reserved keys (the CRD refuses them in spec.nodeLabels; CEL cannot see metadata.labels). */
function userLabels(labels: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(labels ?? {}).filter(([k]) => !isReservedNodeLabel(k)));
}

export function nodeLabels(
  device: EdgeDevice,
  nodeName: string,
  facts?: DeviceFacts,
): Record<string, string> {
  return {
    ...userLabels(device.metadata.labels),
    ...userLabels(device.spec.nodeLabels),
    [Labels.role]: 'edge',
    'node-role.kubernetes.io/edge': '',
    [Labels.type]: 'virtual-kubelet',
    [Labels.device]: device.metadata.name!,
    [Labels.deviceNamespace]: device.metadata.namespace ?? 'default',
    'kubernetes.io/hostname': nodeName,
    'kubernetes.io/os': facts?.os ?? 'linux',
    ...(facts ? { 'kubernetes.io/arch': facts.arch } : {}),
  };
}

/** Stand-in facts until the device has reported: an empty, unschedulable node. */
const UNREPORTED: DeviceFacts = {
  os: 'linux',
  arch: '',
  cpus: 0,
  memoryBytes: 0,
  diskBytes: 0,
  containerRuntimeVersion: '',
  agentVersion: KEDGE_VERSION,
  maxModules: 0,
};

function nodeStatus(
  reported: DeviceFacts | undefined,
  kubelet: KubeletEndpoint,
): Record<string, unknown> {
  const facts = reported ?? UNREPORTED;
  const capacity = {
    cpu: String(facts.cpus),
    memory: `${Math.floor(facts.memoryBytes / 1024)}Ki`,
    'ephemeral-storage': `${Math.floor(facts.diskBytes / 1024)}Ki`,
    pods: String(facts.maxModules ?? DEFAULT_MAX_PODS),
  };
  return {
    capacity,
    allocatable: capacity,
    // Only the controller's own address: the API server dials the preferred address (Hostname
    // first) with its kubelet client credentials, so a device must not choose it.
    addresses: [
      { type: 'InternalIP', address: kubelet.address },
      { type: 'Hostname', address: kubelet.address },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: kubelet.port } },
    nodeInfo: {
      machineID: '',
      systemUUID: '',
      bootID: '',
      kernelVersion: facts.kernelVersion ?? '',
      osImage: facts.osImage ?? '',
      containerRuntimeVersion: facts.containerRuntimeVersion,
      kubeletVersion: `v${facts.agentVersion}`,
      kubeProxyVersion: '',
      operatingSystem: facts.os,
      architecture: facts.arch,
    },
  };
}

/**
 * Node conditions for a device connection; Ready is True only while the device heartbeats, and
 * the pressure conditions follow the device's readings ({@link PressureConditions}).
 */
export function nodeConditions(
  conn: DeviceConnection,
  now: string,
  pressure?: PressureConditions,
): Record<string, unknown>[] {
  const ready = conn.connected
    ? {
        status: 'True',
        reason: 'DeviceConnected',
        message: 'kedge node is connected and heartbeating',
      }
    : conn.lastSeen
      ? {
          status: 'False',
          reason: 'DeviceDisconnected',
          message: `no heartbeat since ${conn.lastSeen}`,
        }
      : {
          status: 'False',
          reason: 'DeviceNeverConnected',
          message: 'kedge node has not connected yet',
        };
  const times = { lastHeartbeatTime: now, lastTransitionTime: conn.since ?? now };
  return [
    { type: 'Ready', ...ready, ...times },
    ...pressureConditions(pressure, conn.connected).map(({ sinceMs, ...c }) => ({
      ...c,
      ...times,
      ...(sinceMs !== undefined && conn.connected
        ? { lastTransitionTime: new Date(sinceMs).toISOString().replace(/\.\d{3}Z$/, 'Z') }
        : {}),
    })),
    {
      type: 'NetworkUnavailable',
      status: 'False',
      reason: 'KedgeNetwork',
      message: 'modules use the device network',
      ...times,
    },
  ];
}
