import { Labels, deviceForNode } from '../provider/naming.js';
import { keyFor, type ControllerContext } from './context.js';

/** Connects informer events to the work queues: who must look again when something changes. */
export function wireHandlers(ctx: ControllerContext): void {
  const { informers, enqueue } = ctx;
  const inNamespace = <T extends { metadata: { namespace?: string; name?: string } }>(
    items: T[],
    ns: string | undefined,
  ): T[] => items.filter((i) => i.metadata.namespace === ns);
  const devicesIn = (ns: string | undefined): void =>
    inNamespace(informers.devices.list(), ns).forEach((d) =>
      enqueue.device(keyFor(ns, d.metadata.name)),
    );
  const deploymentsIn = (ns: string | undefined): void =>
    inNamespace(informers.deployments.list(), ns).forEach((d) =>
      enqueue.deployment(keyFor(ns, d.metadata.name)),
    );

  informers.devices.on((event, device, old) => {
    enqueue.device(keyFor(device.metadata.namespace, device.metadata.name));
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
  informers.deployments.on((_event, deployment) => {
    deploymentsIn(deployment.metadata.namespace);
    devicesIn(deployment.metadata.namespace);
  });
  informers.routes.on((_event, route) => {
    enqueue.route(keyFor(route.metadata.namespace, route.metadata.name));
    devicesIn(route.metadata.namespace);
  });
  informers.pods.on((_event, pod) => {
    const target = pod.spec.nodeName ? deviceForNode(pod.spec.nodeName) : undefined;
    if (target) {
      enqueue.pod(keyFor(pod.metadata.namespace, pod.metadata.name));
      enqueue.device(keyFor(target.namespace, target.device));
    }
    const owner = pod.metadata.labels?.[Labels.deployment];
    if (owner) enqueue.deployment(keyFor(pod.metadata.namespace, owner));
  });
  informers.nodes.on((event, node) => {
    const target = deviceForNode(node.metadata.name ?? '');
    if (target && event === 'delete') enqueue.device(keyFor(target.namespace, target.device));
  });
}

/** Re-examines everything that depends on what a device reported. */
export function onDeviceReport(ctx: ControllerContext, namespace: string, device: string): void {
  ctx.enqueue.device(keyFor(namespace, device));
  for (const d of ctx.informers.deployments.list())
    if (d.metadata.namespace === namespace)
      ctx.enqueue.deployment(keyFor(namespace, d.metadata.name));
  const nodeSuffix = `${device}.${namespace}.`;
  for (const p of ctx.informers.pods.list()) {
    if (p.spec.nodeName?.startsWith(nodeSuffix))
      ctx.enqueue.pod(keyFor(p.metadata.namespace, p.metadata.name));
  }
}
