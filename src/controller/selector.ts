import type { LabelSelector } from '../crds/index.js';

/** True when `labels` satisfy a Kubernetes label selector; an empty selector matches all. */
export function matchesSelector(
  selector: LabelSelector | undefined,
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  return (selector.matchExpressions ?? []).every((req) => {
    const present = Object.hasOwn(labels, req.key);
    switch (req.operator) {
      case 'In':
        return present && (req.values ?? []).includes(labels[req.key]!);
      case 'NotIn':
        return !present || !(req.values ?? []).includes(labels[req.key]!);
      case 'Exists':
        return present;
      case 'DoesNotExist':
        return !present;
      default:
        return false;
    }
  });
}
