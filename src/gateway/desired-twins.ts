/**
 * The service API's desired twin layers on their way to a device: on every change of one, and all
 * of the device's when it (re)subscribes. The hub applies only what changed since the layer it
 * last applied, so resending is harmless.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import type { TwinDesiredMessage } from '../common/cloudlink/protocol.js';
import { leafOfTwinModule, type StoredTwin } from '../common/cloudplane/layout.js';
import { deviceTwinKeys } from '../common/cloudplane/nats.js';

/** The device key (`<ns>.<device>`) a twin key (`<ns>.<device>.<module>`) belongs to. */
export function deviceKeyOfTwin(twinKey: string): string {
  return twinKey.split('.').slice(0, 2).join('.');
}

/** The message for the device of one stored layer. */
export function twinDesiredMessage(entry: KvEntry): string {
  const stored = entry.json<StoredTwin>();
  const leaf = leafOfTwinModule(stored.module);
  const message: TwinDesiredMessage = leaf
    ? { module: '', leaf, properties: stored.properties, version: stored.version }
    : { module: stored.module, properties: stored.properties, version: stored.version };
  return JSON.stringify(message);
}

/** Every desired layer stored for one device, as messages. */
export async function desiredTwinMessages(
  bucket: KV,
  namespace: string,
  device: string,
): Promise<string[]> {
  const keys = await deviceTwinKeys(bucket, namespace, device);
  const entries = await Promise.all(keys.map((k) => bucket.get(k)));
  return entries.flatMap((e) => (e?.operation === 'PUT' ? [twinDesiredMessage(e)] : []));
}
