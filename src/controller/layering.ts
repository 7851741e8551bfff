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
