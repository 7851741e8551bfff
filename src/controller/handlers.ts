import { POD_SECURITY_ENFORCE_LABEL } from '../provider/host-access.js';
import { Labels, deviceForNode, nodeNameFor } from '../provider/naming.js';
import { keyFor, podsOnNode, type ControllerContext, type PodObject } from './context.js';
import type { KubeObject } from './kube/client.js';
import { DEVICE_KEY_FOR_LABEL } from './device-keys.js';
import { enqueueLeavesOf } from './leaf-devices.js';
import { rolloutStore } from './rollout-store.js';

/** Connects informer events to the work queues: who must look again when something changes. */
export function wireHandlers(ctx: ControllerContext): void {
  const { informers, enqueue } = ctx;
  const inNamespace = <T extends { metadata: { namespace?: string; name?: string } }>(
    items: T[],
    ns: string | undefined,
  ): T[] => items.filter((i) => i.metadata.namespace === ns);
  const desiredIn = (ns: string | undefined): void =>
    inNamespace(informers.devices.list(), ns).forEach((d) =>
      enqueue.desired(keyFor(ns, d.metadata.name)),
    );
  const deploymentsIn = (ns: string | undefined): void =>
    inNamespace(informers.deployments.list(), ns).forEach((d) =>
      enqueue.deployment(keyFor(ns, d.metadata.name)),
    );

  informers.devices.on((event, device, old) => {
    enqueue.device(keyFor(device.metadata.namespace, device.metadata.name));
    if (event !== 'update' || !old || specChanged(device, old)) {
      // A leaf's identity travels in its parent's desired state; its parent's presence decides
      // its leaves' Parent condition.
      for (const parent of new Set([device.spec.parent, old?.spec.parent]))
        if (parent) enqueue.desired(keyFor(device.metadata.namespace, parent));
      enqueueLeavesOf(ctx, device.metadata.namespace!, device.metadata.name!);
      enqueue.desired(keyFor(device.metadata.namespace, device.metadata.name));
      // Tenancy and host access decide which of its pods the device admits.
      const node = nodeNameFor(device.metadata.namespace ?? 'default', device.metadata.name!);
      podsOnNode(ctx, node).forEach((p) =>
        enqueue.pod(keyFor(p.metadata.namespace, p.metadata.name)),
      );
    }
    if (
      event !== 'update' ||
      JSON.stringify(device.metadata.labels) !== JSON.stringify(old?.metadata.labels)
    ) {
      deploymentsIn(device.metadata.namespace);
      inNamespace(informers.routes.list(), device.metadata.namespace).forEach((r) =>
        enqueue.route(keyFor(r.metadata.namespace, r.metadata.name)),
      );
    }
  });
  informers.deployments.on((event, deployment, old) => {
    if (event === 'delete') rolloutStore(ctx).forget(deployment.metadata.uid!);
    // The controller's own status writes change nothing the devices or the layering depend on;
    // fanning them out re-reconciled every device of the namespace on each progress update.
    if (event === 'update' && old && !specChanged(deployment, old)) return;
    deploymentsIn(deployment.metadata.namespace);
    desiredIn(deployment.metadata.namespace);
  });
  informers.routes.on((_event, route) => {
    enqueue.route(keyFor(route.metadata.namespace, route.metadata.name));
    desiredIn(route.metadata.namespace);
  });
  informers.pods.on((event, pod, old) => {
    const target = pod.spec.nodeName ? deviceForNode(pod.spec.nodeName) : undefined;
    if (target) enqueue.pod(keyFor(pod.metadata.namespace, pod.metadata.name));
    // A status-only change (the pod reconciler's own writes) alters neither the device's desired
    // state nor the deployment's pods; only the pod itself looks again.
    if (event === 'update' && old && !podShapeChanged(pod, old)) return;
    if (target) enqueue.desired(keyFor(target.namespace, target.device));
    const owner = pod.metadata.labels?.[Labels.deployment];
    if (owner) enqueue.deployment(keyFor(pod.metadata.namespace, owner));
  });
  informers.namespaces.on((event, namespace, old) => {
    // A new Pod Security level may admit or refuse the namespace's pods on devices.
    if (event !== 'update' || !old) return;
    const level = (o: KubeObject): string | undefined =>
      o.metadata.labels?.[POD_SECURITY_ENFORCE_LABEL];
    if (level(namespace) !== level(old)) podsOnDevicesIn(ctx, namespace.metadata.name);
  });
  informers.keySecrets.on((event, secret, old) => {
    // A device key Secret changed (or went): its device reads its keys again now, so a rotated
    // or removed key ends live sessions at once. The controller's own reads are skipped.
    const devices = new Set(
      [secret, old].map((s) => s?.metadata.labels?.[DEVICE_KEY_FOR_LABEL]).filter(Boolean),
    );
    for (const device of devices) {
      const key = keyFor(secret.metadata.namespace, device);
      const state = ctx.states.peek(key);
      const ownRead =
        event !== 'delete' && state?.keysSecretVersion === secret.metadata.resourceVersion;
      if (!state || ownRead) continue;
      state.keysReadAt = undefined;
      enqueue.device(key);
    }
  });
  informers.nodes.on((event, node) => {
    const target = deviceForNode(node.metadata.name ?? '');
    if (target && event === 'delete') enqueue.device(keyFor(target.namespace, target.device));
  });
}

/** Re-examines every pod of `namespace` bound to a kedge node, and those nodes' desired state. */
function podsOnDevicesIn(ctx: ControllerContext, namespace: string | undefined): void {
  for (const pod of ctx.informers.pods.list()) {
    const target = pod.spec.nodeName ? deviceForNode(pod.spec.nodeName) : undefined;
    if (pod.metadata.namespace !== namespace || !target) continue;
    ctx.enqueue.pod(keyFor(pod.metadata.namespace, pod.metadata.name));
    ctx.enqueue.desired(keyFor(target.namespace, target.device));
  }
}

/** Whether an update touched more than status: spec (generation), labels or deletion. */
function specChanged(obj: KubeObject, old: KubeObject): boolean {
  return (
    obj.metadata.generation !== old.metadata.generation ||
    obj.metadata.deletionTimestamp !== old.metadata.deletionTimestamp ||
    JSON.stringify(obj.metadata.labels) !== JSON.stringify(old.metadata.labels)
  );
}

/**
 * Whether a pod update touched what devices and deployments read: spec, labels, annotations
 * (module settings, spec hash) or deletion. Pods have no reliable generation, so this compares.
 */
function podShapeChanged(pod: PodObject, old: PodObject): boolean {
  return (
    specChanged(pod, old) ||
    JSON.stringify(pod.metadata.annotations) !== JSON.stringify(old.metadata.annotations) ||
    JSON.stringify(pod.spec) !== JSON.stringify(old.spec)
  );
}

/** Re-examines everything that depends on what a device reported. */
export function onDeviceReport(ctx: ControllerContext, namespace: string, device: string): void {
  ctx.enqueue.device(keyFor(namespace, device));
  // The leaves it reports connected, and those it no longer does.
  enqueueLeavesOf(ctx, namespace, device);
  for (const d of ctx.informers.deployments.list())
    if (d.metadata.namespace === namespace)
      ctx.enqueue.deployment(keyFor(namespace, d.metadata.name));
  for (const p of podsOnNode(ctx, nodeNameFor(namespace, device)))
    ctx.enqueue.pod(keyFor(p.metadata.namespace, p.metadata.name));
}
