/** A Kubernetes MicroTime (RFC 3339 with exactly six fractional digits), as Lease fields need. */
export function microTime(date: Date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** A Kubernetes Time (RFC 3339, whole seconds). */
export function kubeTime(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
