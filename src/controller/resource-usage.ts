import { deviceForNode } from '../provider/naming.js';
import type { ContainerUsage, ResourceUsage } from '../provider/resource-metrics.js';
import { keyFor, podsOnNode, type ControllerContext } from './context.js';
import { assignModules } from './desired.js';

/**
 * A node's latest usage readings with each module's pod container, for the kubelet API's
 * resource metrics; undefined while its device is disconnected or has sent none. Modules no pod
 * owns are left out, as a kubelet knows only its pods' containers.
 */
export function resourceUsageOf(
  ctx: ControllerContext,
  nodeName: string,
): ResourceUsage | undefined {
  const target = deviceForNode(nodeName);
  const state = target && ctx.states.peek(keyFor(target.namespace, target.device));
  if (!state?.connected || !state.usage) return undefined;
  const bound = podsOnNode(ctx, nodeName).map((pod) => ({ pod, env: {}, registryCredentials: [] }));
  const owners = assignModules(bound).owners;
  const started = new Map(
    (state.report?.modules ?? []).map((m) => [m.name, m.lastStartTimeUtc] as const),
  );
  const containers: ContainerUsage[] = [];
  for (const m of state.usage.modules) {
    const owner = owners.get(m.name)?.pod;
    if (!owner) continue;
    const startedAtMs = Date.parse(started.get(m.name) ?? '');
    containers.push({
      namespace: owner.metadata.namespace!,
      pod: owner.metadata.name!,
      container: m.name,
      atMs: m.atMs,
      cpuSecs: m.cpuSecs,
      memoryWorkingSetBytes: m.memoryWorkingSetBytes,
      ...(Number.isNaN(startedAtMs) ? {} : { startedAtMs }),
    });
  }
  return { node: state.usage.node, containers };
}
