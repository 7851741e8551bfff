/**
 * Whether a pod bound to a device's Node may run on the device. A pod can name any Node in
 * `spec.nodeName` and skip the scheduler, so the device decides: its own namespace or ones it
 * lists, no DaemonSet pods unless they opt in, and no host access the namespace's Pod Security
 * level and the device do not both allow.
 */
import type { EdgeDevice } from '../crds/index.js';
import { checkHostAccess, type PodSecurityLevel } from './host-access.js';
import type { PodSpec } from './pod-types.js';
import { podToModules } from './translate.js';

/** Pod annotation (set in a DaemonSet's pod template) that lets its pods run on devices. */
export const ALLOW_DAEMONSET_ANNOTATION = 'kedge.io/allow-daemonset';

/** The pod condition that says whether the device accepted the pod. */
export const ADMITTED_CONDITION = 'kedge.io/Admitted';

/** Why a device refuses a pod; the reason is also the Event reason. */
export interface Refusal {
  reason: 'NamespaceNotAllowed' | 'DaemonSetNotAllowed' | 'HostAccessDenied';
  message: string;
}

/** The parts of a pod admission reads. */
export interface AdmissionPod {
  metadata: {
    namespace?: string;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string }[];
  };
  spec: PodSpec;
}

/** The refusal of `pod` by `device`, or undefined when it may run there. */
export function admitPod(
  pod: AdmissionPod,
  device: EdgeDevice,
  podNamespaceLevel: PodSecurityLevel,
): Refusal | undefined {
  return (
    namespaceRefusal(pod, device) ??
    daemonSetRefusal(pod) ??
    hostAccessRefusal(pod, device, podNamespaceLevel)
  );
}

function deviceName(device: EdgeDevice): string {
  return `${device.metadata.namespace ?? 'default'}/${device.metadata.name ?? ''}`;
}

function namespaceRefusal(pod: AdmissionPod, device: EdgeDevice): Refusal | undefined {
  const ns = pod.metadata.namespace ?? 'default';
  if (ns === (device.metadata.namespace ?? 'default')) return undefined;
  if (device.spec.tenancy?.allowPodsFromNamespaces?.includes(ns)) return undefined;
  return {
    reason: 'NamespaceNotAllowed',
    message: `EdgeDevice ${deviceName(device)} does not run pods from namespace ${ns}; list it in spec.tenancy.allowPodsFromNamespaces to allow them`,
  };
}

function daemonSetRefusal(pod: AdmissionPod): Refusal | undefined {
  const owner = pod.metadata.ownerReferences?.find((o) => o.kind === 'DaemonSet');
  if (!owner || pod.metadata.annotations?.[ALLOW_DAEMONSET_ANNOTATION] === 'true') return undefined;
  return {
    reason: 'DaemonSetNotAllowed',
    message: `pods of DaemonSet ${owner.name} do not run on edge devices unless its pod template has the annotation ${ALLOW_DAEMONSET_ANNOTATION}: "true"`,
  };
}

function hostAccessRefusal(
  pod: AdmissionPod,
  device: EdgeDevice,
  level: PodSecurityLevel,
): Refusal | undefined {
  const { modules } = podToModules(pod, { env: {}, registryCredentials: [] });
  const problems: string[] = [];
  for (const [name, module] of Object.entries(modules)) {
    const options = (module.settings.createOptions ?? {}) as Record<string, unknown>;
    const violations = checkHostAccess(options, {
      level,
      allowance: device.spec.hostAccess,
      namespace: pod.metadata.namespace ?? 'default',
      device: deviceName(device),
    });
    problems.push(...violations.map((v) => `container ${name}: ${v.message}`));
  }
  if (problems.length === 0) return undefined;
  return { reason: 'HostAccessDenied', message: problems.join('; ') };
}
