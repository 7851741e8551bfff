/**
 * Name conversion for `kedge manifest import`: IoT Edge module and route names (letters, digits,
 * `_`, `-`, any case) get DNS-1123 labels, which Kubernetes names require. A module keeps its
 * IoT Edge name as its module id, so routes are never rewritten.
 */

/** The longest DNS-1123 label. */
export const MAX_LABEL_LENGTH = 63;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** True when `name` is already a DNS-1123 label. */
export function isDnsLabel(name: string): boolean {
  return name.length <= MAX_LABEL_LENGTH && DNS_LABEL.test(name);
}

/**
 * A DNS-1123 label for `name`: camelCase humps become dashes (`filterModule` → `filter-module`),
 * other characters outside `[a-z0-9-]` become dashes, runs of dashes collapse, and the result is
 * trimmed to 63 characters. Never empty: a name with nothing usable becomes `fallback`.
 */
export function toDnsLabel(name: string, fallback: string): string {
  const label = name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, MAX_LABEL_LENGTH)
    .replace(/^-+|-+$/g, '');
  return label === '' ? fallback : label;
}

/**
 * Gives every name a unique DNS label, keeping names that already are labels. Returns the
 * old → new map; names that clash after conversion get `-2`, `-3`… suffixes.
 */
export function uniqueLabels(names: readonly string[], fallback: string): Map<string, string> {
  const taken = new Set(names.filter(isDnsLabel));
  const out = new Map<string, string>();
  for (const name of names) {
    if (isDnsLabel(name)) {
      out.set(name, name);
      continue;
    }
    const base = toDnsLabel(name, fallback);
    let candidate = base;
    for (let n = 2; taken.has(candidate); n++) {
      const suffix = `-${n}`;
      candidate = `${base.slice(0, MAX_LABEL_LENGTH - suffix.length)}${suffix}`;
    }
    taken.add(candidate);
    out.set(name, candidate);
  }
  return out;
}
