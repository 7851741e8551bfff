import type { EdgeDeployment, EdgeModule } from '../crds/index.js';

/** The module a device runs under one name, and the deployment it came from. */
export interface ModuleClaim {
  deployment: EdgeDeployment;
  module: EdgeModule;
}

/** A module a deployment wanted but lost to another on one device. */
export interface LostClaim {
  deployment: string;
  module: string;
  winner: string;
}

/**
 * Layered deployments: every deployment that targets a device applies. A module name claimed by
 * several is won by the higher `priority`; ties go to the deployment name that sorts first.
 */
export function resolveLayers(deployments: readonly EdgeDeployment[]): {
  winners: Map<string, ModuleClaim>;
  lost: LostClaim[];
} {
  const ordered = [...deployments].sort(
    (a, b) =>
      (b.spec.priority ?? 0) - (a.spec.priority ?? 0) ||
      a.metadata.name!.localeCompare(b.metadata.name!),
  );
  const winners = new Map<string, ModuleClaim>();
  const lost: LostClaim[] = [];
  for (const deployment of ordered) {
    for (const module of deployment.spec.modules ?? []) {
      const current = winners.get(module.name);
      if (current)
        lost.push({
          deployment: deployment.metadata.name!,
          module: module.name,
          winner: current.deployment.metadata.name!,
        });
      else winners.set(module.name, { deployment, module });
    }
  }
  return { winners, lost };
}

/** One contribution to a module twin: a value at a path, and the deployment it came from. */
interface TwinLayer {
  priority: number;
  deployment: string;
  /** Path segments under `properties.desired`; empty for the module's own desiredProperties. */
  path: string[];
  value: unknown;
}

/**
 * The module with its twin's desired properties merged from every deployment on the device, as
 * IoT Edge layers deployments: the module's own `desiredProperties` are the whole twin at its
 * deployment's priority, and each `spec.desiredProperties` entry for the module sets one path.
 * Contributions apply lowest priority first, so at any path the higher priority wins (ties: the
 * deployment name that sorts first, as for modules); a wider path applied later replaces what
 * narrower ones set under it. Returns `claim.module` itself when no entry names the module.
 */
export function withLayeredProperties(
  claim: ModuleClaim,
  deployments: readonly EdgeDeployment[],
): EdgeModule {
  const layers = deployments.flatMap((d) =>
    (d.spec.desiredProperties ?? [])
      .filter((p) => p.module === claim.module.name)
      .map((p) => layer(d, p.path.split('.'), p.value)),
  );
  if (layers.length === 0) return claim.module;
  if (claim.module.desiredProperties)
    layers.push(layer(claim.deployment, [], claim.module.desiredProperties));
  layers.sort(
    (a, b) =>
      a.priority - b.priority ||
      b.deployment.localeCompare(a.deployment) ||
      a.path.length - b.path.length,
  );
  let twin: Record<string, unknown> = {};
  for (const l of layers) twin = setAtPath(twin, l.path, structuredClone(l.value));
  return { ...claim.module, desiredProperties: twin };
}

function layer(deployment: EdgeDeployment, path: string[], value: unknown): TwinLayer {
  return {
    priority: deployment.spec.priority ?? 0,
    deployment: deployment.metadata.name!,
    path,
    value,
  };
}

/** `root` with `value` at `path`; objects are created (or replace non-objects) along the way. */
function setAtPath(
  root: Record<string, unknown>,
  path: readonly string[],
  value: unknown,
): Record<string, unknown> {
  if (path.length === 0) return isRecord(value) ? value : root;
  let node = root;
  for (const key of path.slice(0, -1)) {
    const child = node[key];
    if (!isRecord(child)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
  return root;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
