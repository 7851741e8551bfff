import type { UsageMessage } from '../common/cloudlink/usage.js';
import {
  nodeMetricsOf,
  podMetricsOf,
  type NodeMetrics,
  type PodMetrics,
} from '../provider/metrics-objects.js';
import { deviceForNode, nodeNameFor } from '../provider/naming.js';
import type { ContainerUsage, ResourceUsage } from '../provider/resource-metrics.js';
import { keyFor, podsOnNode, splitKey, type ControllerContext } from './context.js';
import { assignModules } from './desired.js';
import type { DeviceState } from './device-state.js';

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
  return { node: state.usage.node, containers: containersOf(ctx, nodeName, state, state.usage) };
}

function containersOf(
  ctx: ControllerContext,
  nodeName: string,
  state: DeviceState,
  usage: UsageMessage,
): ContainerUsage[] {
  const bound = podsOnNode(ctx, nodeName).map((pod) => ({ pod, env: {}, registryCredentials: [] }));
  const owners = assignModules(bound).owners;
  const started = new Map(
    (state.report?.modules ?? []).map((m) => [m.name, m.lastStartTimeUtc] as const),
  );
  const containers: ContainerUsage[] = [];
  for (const m of usage.modules) {
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
  return containers;
}

/** Connected devices with two samples, the least a rate needs, by node name. */
function* sampled(
  ctx: ControllerContext,
): Generator<{ nodeName: string; state: DeviceState; before: UsageMessage; after: UsageMessage }> {
  for (const [key, state] of ctx.states.entries()) {
    if (!state.connected || !state.usage || !state.previousUsage) continue;
    const { namespace, name } = splitKey(key);
    const nodeName = nodeNameFor(namespace, name);
    yield { nodeName, state, before: state.previousUsage, after: state.usage };
  }
}

/** NodeMetrics of every kedge node whose device sent two samples. */
export function nodeMetrics(ctx: ControllerContext): NodeMetrics[] {
  const out: NodeMetrics[] = [];
  for (const { nodeName, before, after } of sampled(ctx)) {
    const labels = ctx.informers.nodes.get(nodeName)?.metadata.labels ?? {};
    const metrics = nodeMetricsOf(nodeName, labels, before.node, after.node);
    if (metrics) out.push(metrics);
  }
  return out;
}

/** PodMetrics of the pods on kedge nodes (of one namespace, when given). */
export function podMetrics(ctx: ControllerContext, namespace?: string): PodMetrics[] {
  const out: PodMetrics[] = [];
  for (const { nodeName, state, before, after } of sampled(ctx)) {
    const pods = new Map(
      podsOnNode(ctx, nodeName)
        .filter((p) => namespace === undefined || p.metadata.namespace === namespace)
        .map((p) => [
          keyFor(p.metadata.namespace, p.metadata.name),
          { labels: p.metadata.labels ?? {}, containers: p.spec.containers.length },
        ]),
    );
    out.push(
      ...podMetricsOf(
        containersOf(ctx, nodeName, state, before),
        containersOf(ctx, nodeName, state, after),
        pods,
      ),
    );
  }
  return out;
}
