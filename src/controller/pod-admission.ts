import { admitPod, type Refusal } from '../provider/admission.js';
import { podSecurityLevel } from '../provider/host-access.js';
import type { EdgeDevice } from '../crds/index.js';
import type { ControllerContext, PodObject } from './context.js';

/**
 * Whether `device` refuses `pod` (see {@link admitPod}), judged with the Pod Security level of
 * the pod's namespace as the namespace informer last saw it.
 */
export function podRefusal(
  ctx: ControllerContext,
  pod: PodObject,
  device: EdgeDevice,
): Refusal | undefined {
  const namespace = ctx.informers.namespaces.get(pod.metadata.namespace ?? 'default');
  return admitPod(pod, device, podSecurityLevel(namespace?.metadata.labels));
}
