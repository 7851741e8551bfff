import type {
  RawModule,
  RawModulesContent,
  RawRouteObject,
  RegistryCredential,
} from '../common/manifest/index.js';
import { parseRoute, routeText } from '../common/routes/index.js';
import type { EdgeDeployment, Route } from '../crds/index.js';
import { moduleIdOf, podToModules } from '../provider/translate.js';
import type { PodSpec } from '../provider/pod-types.js';
import type { KubeObject } from './kube/client.js';

/** A pod as the desired-state builder sees it, with its env already resolved. */
export interface BoundPod {
  pod: KubeObject & { spec: PodSpec };
  env: Record<string, Record<string, string>>;
  registryCredentials: RegistryCredential[];
}

/** Which pod owns each module name on a device, and which pods lost a name clash. */
export interface ModuleOwnership {
  owners: Map<string, BoundPod>;
  clashes: { pod: KubeObject; module: string; owner: string }[];
}

/**
 * Terminating pods own nothing; among the others the oldest pod (then the name that sorts first)
 * owns a module name, and later pods that use the same name fail with a clash.
 */
export function assignModules(pods: readonly BoundPod[]): ModuleOwnership {
  const live = pods.filter((p) => !p.pod.metadata.deletionTimestamp);
  live.sort(
    (a, b) =>
      (a.pod.metadata.creationTimestamp ?? '').localeCompare(
        b.pod.metadata.creationTimestamp ?? '',
      ) || a.pod.metadata.name!.localeCompare(b.pod.metadata.name!),
  );
  const owners = new Map<string, BoundPod>();
  // Hub identities are claimed like names: two modules cannot share one module id on a device.
  const ids = new Map<string, BoundPod>();
  const clashes: ModuleOwnership['clashes'] = [];
  for (const bound of live) {
    const clash = firstClash(bound, owners, ids);
    if (clash) {
      clashes.push({ pod: bound.pod, ...clash });
      continue;
    }
    for (const c of bound.pod.spec.containers) {
      owners.set(c.name, bound);
      ids.set(moduleIdOf(bound.pod, c.name), bound);
    }
  }
  return { owners, clashes };
}

/** The first container of `bound` whose name or module id is taken, with its owner pod. */
function firstClash(
  bound: BoundPod,
  owners: ReadonlyMap<string, BoundPod>,
  ids: ReadonlyMap<string, BoundPod>,
): { module: string; owner: string } | undefined {
  const own = new Set<string>();
  for (const c of bound.pod.spec.containers) {
    const id = moduleIdOf(bound.pod, c.name);
    const owner = owners.get(c.name) ?? ids.get(id);
    if (owner)
      return { module: c.name === id ? id : `${c.name} (${id})`, owner: owner.pod.metadata.name! };
    if (own.has(id)) return { module: id, owner: bound.pod.metadata.name! };
    own.add(id);
  }
  return undefined;
}

/** Inputs for {@link buildModulesContent}. */
export interface DeviceDesiredInputs {
  ownership: ModuleOwnership;
  /** Deployments that target the device, for routes and hub settings. */
  deployments: readonly EdgeDeployment[];
  /** Route CRs whose deviceSelector matches the device. */
  routes: readonly Route[];
}

/** The IoT Edge deployment manifest (`modulesContent`) a device should run. */
export function buildModulesContent(inputs: DeviceDesiredInputs): RawModulesContent {
  const modules: Record<string, RawModule> = {};
  const twins: Record<string, { 'properties.desired': object }> = {};
  const credentials = new Map<string, RegistryCredential>();
  const seen = new Set<BoundPod>();
  for (const bound of inputs.ownership.owners.values()) {
    if (seen.has(bound)) continue;
    seen.add(bound);
    const t = podToModules(bound.pod, {
      env: bound.env,
      registryCredentials: bound.registryCredentials,
    });
    Object.assign(modules, t.modules);
    for (const [name, desired] of Object.entries(t.twins))
      twins[name] = { 'properties.desired': desired };
    for (const c of bound.registryCredentials) credentials.set(c.address, c);
  }
  return {
    $edgeAgent: {
      'properties.desired': {
        schemaVersion: '1.1',
        runtime: {
          type: 'docker',
          settings: { registryCredentials: registryMap([...credentials.values()]) },
        },
        modules,
      },
    },
    $edgeHub: {
      'properties.desired': {
        schemaVersion: '1.1',
        routes: deviceRoutes(inputs.deployments, inputs.routes),
        storeAndForwardConfiguration: { timeToLiveSecs: storeTtl(inputs.deployments) },
      },
    },
    ...twins,
  };
}

function registryMap(credentials: RegistryCredential[]): Record<string, RegistryCredential> {
  return Object.fromEntries(credentials.map((c, i) => [`registry${i + 1}`, c]));
}

/** Routes from every targeting deployment and matching Route CR; unparsable ones are left out. */
export function deviceRoutes(
  deployments: readonly EdgeDeployment[],
  routes: readonly Route[],
): Record<string, RawRouteObject> {
  const out: Record<string, RawRouteObject> = {};
  for (const d of deployments) {
    for (const r of d.spec.routes ?? []) addRoute(out, `${d.metadata.name}-${r.name}`, r);
  }
  for (const r of routes) addRoute(out, `route-${r.metadata.name}`, r.spec);
  return out;
}

interface RouteFields {
  route?: string;
  from?: string;
  condition?: string;
  to?: string;
  priority?: number;
  timeToLiveSecs?: number;
}

export { routeText };

function addRoute(out: Record<string, RawRouteObject>, key: string, r: RouteFields): void {
  const route = routeText(r);
  try {
    parseRoute(route);
  } catch {
    return; // reported on the Route or EdgeDeployment status
  }
  out[key] = {
    route,
    ...(r.priority !== undefined ? { priority: r.priority } : {}),
    ...(r.timeToLiveSecs !== undefined ? { timeToLiveSecs: r.timeToLiveSecs } : {}),
  };
}

/** Default store-and-forward TTL, as IoT Edge's. */
const DEFAULT_STORE_TTL_SECS = 7200;

/** The TTL of the highest-priority deployment that sets one. */
function storeTtl(deployments: readonly EdgeDeployment[]): number {
  const ordered = [...deployments].sort((a, b) => (b.spec.priority ?? 0) - (a.spec.priority ?? 0));
  for (const d of ordered) {
    const ttl = d.spec.hub?.storeAndForward?.timeToLiveSecs;
    if (ttl !== undefined) return ttl;
  }
  return DEFAULT_STORE_TTL_SECS;
}
