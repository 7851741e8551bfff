import type { CrdSource } from './crd.js';
import { edgeDeployment } from './edge-deployment.js';
import { edgeDevice } from './edge-device.js';
import { route } from './route.js';

export { API_VERSION, GROUP, VERSION, CATEGORY } from './common.js';
export { objectSchema, toCrd, type CrdSource } from './crd.js';
export { edgeDevice, edgeDeployment, route };
export { isReservedNodeLabel } from './edge-device.js';
export { ROLLOUT_DEFAULTS } from './edge-deployment.js';
export type * from './types.generated.js';

/** The three kedge resources, in install order. */
export const CRD_SOURCES: readonly CrdSource[] = [edgeDevice, edgeDeployment, route];

/** The CRD source for a kind, or undefined. */
export function crdSourceForKind(kind: string): CrdSource | undefined {
  return CRD_SOURCES.find((s) => s.kind === kind);
}
