import type { Condition } from '../crds/index.js';
import { kubeTime } from './kube/time.js';

/** A condition to set; lastTransitionTime is kept when the status does not change. */
export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** Merges `updates` into `existing`, preserving transition times of unchanged statuses. */
export function mergeConditions(
  existing: readonly Condition[] | undefined,
  updates: readonly ConditionInput[],
  generation?: number,
): Condition[] {
  const now = kubeTime();
  const byType = new Map((existing ?? []).map((c) => [c.type, c]));
  for (const update of updates) {
    const previous = byType.get(update.type);
    byType.set(update.type, {
      ...update,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime:
        previous?.status === update.status && previous.lastTransitionTime
          ? previous.lastTransitionTime
          : now,
    });
  }
  return [...byType.values()];
}

/** Conditions compared without their timestamps, to skip writes that change nothing. */
export function sameConditions(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const strip = (cs: readonly Condition[] | undefined): string =>
    JSON.stringify(
      (cs ?? [])
        .map(({ lastTransitionTime: _t, ...rest }) => rest)
        .sort((x, y) => x.type.localeCompare(y.type)),
    );
  return strip(a) === strip(b);
}
