import { keyFor, type ControllerContext } from './context.js';
import { pushDesired } from './device-desired.js';
import { declaredParent } from './leaf-devices.js';
import type { ReconcileResult } from './workqueue.js';

/**
 * Level-based push of one device's desired state: builds the manifest from its pods,
 * deployments and routes and sends it when it changed. It makes no API calls, so it has a
 * queue of its own: a pod's start never waits behind other devices' Node and status writes.
 */
export async function reconcileDesired(
  ctx: ControllerContext,
  key: string,
): Promise<ReconcileResult> {
  const device = ctx.informers.devices.get(key);
  // A leaf has no desired state of its own: its identity travels in its parent's.
  if (!device || device.metadata.deletionTimestamp || declaredParent(device)) return {};
  const state = ctx.states.get(key);
  const ownership = await pushDesired(ctx, device, state);
  // The device's status counts its desired modules; it looks again when that number moves.
  if (state.desiredModules !== ownership.owners.size) {
    state.desiredModules = ownership.owners.size;
    ctx.enqueue.device(key);
  }
  for (const clash of ownership.clashes)
    ctx.enqueue.pod(keyFor(clash.pod.metadata.namespace, clash.pod.metadata.name));
  return {};
}
