import { createHmac } from 'node:crypto';

/** Namespace of the benchmark's devices. */
export const BENCH_NAMESPACE = 'swarm';

/** The name of device `i`. */
export function deviceName(i: number): string {
  return `dev-${i}`;
}

/**
 * A device key derived from a per-run secret, so the hub host and the device swarm agree on
 * thousands of keys without exchanging them. The secret is random for every run.
 */
export function deviceKey(secret: string, namespace: string, device: string): string {
  return createHmac('sha256', secret).update(`${namespace}/${device}`).digest('base64');
}
