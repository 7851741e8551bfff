import type { Logger } from '../common/logger.js';
import type { EdgeDeployment, EdgeDevice, Route } from '../crds/index.js';
import type { KubeletEndpoint } from '../provider/node.js';
import type { PodSpec, PodStatus } from '../provider/pod-types.js';
import type { DeviceBackend } from './backend/device-backend.js';
import type { DeviceStates } from './device-state.js';
import type { EventRecorder } from './events.js';
import type { ObjectCache } from './kube/informer-set.js';
import type { KubeClient, KubeObject } from './kube/client.js';
import type { ControllerMetrics } from './metrics.js';

/** A pod as the controller handles it. */
export type PodObject = KubeObject & { spec: PodSpec; status?: PodStatus };

/** Everything the reconcilers share. */
export interface ControllerContext {
  client: KubeClient;
  log: Logger;
  events: EventRecorder;
  states: DeviceStates;
  backend: DeviceBackend;
  metrics: ControllerMetrics;
  kubelet: KubeletEndpoint;
  informers: {
    devices: ObjectCache<EdgeDevice & KubeObject>;
    deployments: ObjectCache<EdgeDeployment & KubeObject>;
    routes: ObjectCache<Route & KubeObject>;
    pods: ObjectCache<PodObject>;
    nodes: ObjectCache<KubeObject>;
    /** Namespaces, for their Pod Security level (labels). */
    namespaces: ObjectCache<KubeObject>;
    /** Secrets labelled `kedge.io/device-key-for`: device keys, so an edit revokes at once. */
    keySecrets: ObjectCache<KubeObject>;
  };
  enqueue: {
    device(key: string): void;
    /** The device's desired state (see reconcile-desired.ts). */
    desired(key: string): void;
    deployment(key: string): void;
    route(key: string): void;
    pod(key: string): void;
  };
}

/** Index of the pod informer: pods by `spec.nodeName`. */
export const POD_NODE_INDEX = 'nodeName';

/** Pods bound to a node, from the pod informer's node index. */
export function podsOnNode(ctx: ControllerContext, nodeName: string): PodObject[] {
  return ctx.informers.pods.indexed(POD_NODE_INDEX, nodeName);
}

/** `namespace/name` of an object. */
export function keyFor(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? 'default'}/${name ?? ''}`;
}

/** Splits a `namespace/name` key. */
export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
