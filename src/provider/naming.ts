/**
 * Deterministic names. A device `sensor-1` in namespace `factory` is the Node
 * `sensor-1.factory.kedge`: namespaces cannot contain dots, so the name parses back uniquely.
 */
export const NODE_SUFFIX = 'kedge';

export function nodeNameFor(namespace: string, device: string): string {
  return `${device}.${namespace}.${NODE_SUFFIX}`;
}

/** The device a node name stands for, or undefined if it is not a kedge node name. */
export function deviceForNode(nodeName: string): { namespace: string; device: string } | undefined {
  const parts = nodeName.split('.');
  if (parts.length < 3 || parts.at(-1) !== NODE_SUFFIX) return undefined;
  return { namespace: parts.at(-2)!, device: parts.slice(0, -2).join('.') };
}

/** Labels, taints and annotation keys kedge puts on objects. */
export const Labels = {
  device: 'kedge.io/device',
  deviceNamespace: 'kedge.io/device-namespace',
  deployment: 'kedge.io/deployment',
  module: 'kedge.io/module',
  role: 'kubernetes.io/role',
  type: 'type',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

/** Node annotation `namespace/device` that marks a Node as kedge's for that EdgeDevice. */
export const DEVICE_REF_ANNOTATION = 'kedge.io/device-ref';

export const EDGE_TAINT = { key: 'kedge.io/edge', value: 'true', effect: 'NoSchedule' } as const;
export const FINALIZER = 'kedge.io/cleanup';
