import { createHash } from 'node:crypto';
import type { RegistryCredential } from '../common/manifest/index.js';
import type { EdgeDeployment, EdgeDevice } from '../crds/index.js';
import { nodeNameFor } from '../provider/naming.js';
import {
  registryCredentialsFrom,
  resolveContainerEnv,
  type ObjectLookup,
} from '../provider/resolve.js';
import { podsOnNode, type ControllerContext, type PodObject } from './context.js';
import {
  assignModules,
  buildModulesContent,
  type BoundPod,
  type ModuleOwnership,
} from './desired.js';
import type { DeviceState } from './device-state.js';
import { Resources, type KubeObject } from './kube/client.js';
import { leafIdentitiesOf } from './leaf-devices.js';
import { podRefusal } from './pod-admission.js';
import { matchesSelector } from './selector.js';

/** Pods bound to the device's node. */
export function podsOnDevice(ctx: ControllerContext, device: EdgeDevice): PodObject[] {
  const nodeName = nodeNameFor(device.metadata.namespace!, device.metadata.name!);
  return podsOnNode(ctx, nodeName);
}

/** Pods bound to the device's node that the device accepts (see {@link podRefusal}). */
export function admittedPodsOnDevice(ctx: ControllerContext, device: EdgeDevice): PodObject[] {
  return podsOnDevice(ctx, device).filter((pod) => !podRefusal(ctx, pod, device));
}

/** EdgeDeployments (not being deleted) whose selector targets the device. */
export function deploymentsFor(ctx: ControllerContext, device: EdgeDevice): EdgeDeployment[] {
  return ctx.informers.deployments
    .list()
    .filter(
      (d) =>
        d.metadata.namespace === device.metadata.namespace &&
        !d.metadata.deletionTimestamp &&
        matchesSelector(d.spec.selector, device.metadata.labels),
    );
}

/**
 * Builds the device's desired manifest from its pods, deployments and routes, and pushes it with
 * a new version when its content changed. Returns the module ownership for pod status.
 */
export async function pushDesired(
  ctx: ControllerContext,
  device: EdgeDevice,
  state: DeviceState,
): Promise<ModuleOwnership> {
  const namespace = device.metadata.namespace!;
  const pods = podsOnDevice(ctx, device);
  // Every reference is read in the pod's own namespace, never the device's.
  const lookups = new Map<string, ObjectLookup>();
  const lookupFor = (ns: string): ObjectLookup => {
    if (!lookups.has(ns)) lookups.set(ns, namespaceLookup(ctx, ns));
    return lookups.get(ns)!;
  };
  const admitted = pods.filter((pod) => !podRefusal(ctx, pod, device));
  const bound = await Promise.all(
    admitted.map((pod) => bindPod(pod, lookupFor(pod.metadata.namespace!))),
  );
  const ownership = assignModules(bound);
  const routes = ctx.informers.routes
    .list()
    .filter(
      (r) =>
        r.metadata.namespace === namespace &&
        matchesSelector(r.spec.deviceSelector, device.metadata.labels),
    );
  const modulesContent = buildModulesContent({
    ownership,
    deployments: deploymentsFor(ctx, device),
    routes,
  });
  const leafDevices = leafIdentitiesOf(ctx, device);
  const content = leafDevices.length > 0 ? { modulesContent, leafDevices } : modulesContent;
  const hash = createHash('sha256').update(JSON.stringify(content)).digest('hex');
  if (hash !== state.desiredHash) {
    state.desiredVersion = Math.max(state.desiredVersion, device.status?.desiredVersion ?? 0) + 1;
    state.desiredHash = hash;
    ctx.log.info(
      { device: `${namespace}/${device.metadata.name}`, version: state.desiredVersion },
      'pushing desired state',
    );
  }
  // A terminating pod is gone from this version; one that was refused was never sent at all.
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp && !state.removals.has(pod.metadata.uid!))
      state.removals.set(pod.metadata.uid!, state.desiredVersion);
  }
  await ctx.backend.publishDesired(namespace, device.metadata.name!, {
    version: state.desiredVersion,
    modulesContent,
    leafDevices,
  });
  return ownership;
}

async function bindPod(pod: PodObject, lookup: ObjectLookup): Promise<BoundPod> {
  const fields = {
    name: pod.metadata.name!,
    namespace: pod.metadata.namespace!,
    uid: pod.metadata.uid,
    nodeName: pod.spec.nodeName,
    labels: pod.metadata.labels,
    annotations: pod.metadata.annotations,
  };
  const env: Record<string, Record<string, string>> = {};
  for (const container of pod.spec.containers)
    env[container.name] = (await resolveContainerEnv(container, fields, lookup)).env;
  const registryCredentials: RegistryCredential[] = [];
  for (const ref of pod.spec.imagePullSecrets ?? []) {
    const data = await lookup.secret(ref.name);
    const json = data?.['.dockerconfigjson'];
    if (json) registryCredentials.push(...registryCredentialsFrom(json));
  }
  return { pod, env, registryCredentials };
}

/** Reads ConfigMaps and Secrets of one namespace (the pod's), memoized for one reconcile. */
export function namespaceLookup(ctx: ControllerContext, namespace: string): ObjectLookup {
  const cache = new Map<string, Promise<Record<string, string> | undefined>>();
  const read = (
    kind: 'configmaps' | 'secrets',
    name: string,
  ): Promise<Record<string, string> | undefined> => {
    const key = `${kind}/${name}`;
    let hit = cache.get(key);
    if (!hit) {
      const ref =
        kind === 'secrets' ? Resources.secrets(namespace) : Resources.configMaps(namespace);
      hit = ctx.client
        .find<KubeObject & { data?: Record<string, string> }>(ref, name)
        .then((obj) => {
          if (!obj) return undefined;
          const data = obj.data ?? {};
          return kind === 'secrets'
            ? Object.fromEntries(
                Object.entries(data).map(([k, v]) => [
                  k,
                  Buffer.from(v, 'base64').toString('utf8'),
                ]),
              )
            : data;
        });
      cache.set(key, hit);
    }
    return hit;
  };
  return { configMap: (name) => read('configmaps', name), secret: (name) => read('secrets', name) };
}
