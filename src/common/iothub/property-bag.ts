/**
 * IoT Hub MQTT property bags: the `k=v&k2=v2` segment at the end of telemetry, input and C2D
 * topics. Keys and values are URI-encoded, so the system-property prefix `$.` travels as `%24.`.
 */

/** Decoded properties in wire order. Values are strings; a key without `=` decodes to `''`. */
export type PropertyBag = Map<string, string>;

/** Wire keys of the IoT Hub system properties (`$.` prefix), per azure-iot-device-mqtt. */
export const SystemPropertyKey = {
  messageId: '$.mid',
  correlationId: '$.cid',
  userId: '$.uid',
  to: '$.to',
  expiryTimeUtc: '$.exp',
  contentType: '$.ct',
  contentEncoding: '$.ce',
  outputName: '$.on',
  connectionDeviceId: '$.cdid',
  connectionModuleId: '$.cmid',
  interfaceId: '$.ifid',
  creationTime: '$.ctime',
  messageSchema: '$.schema',
  component: '$.sub',
} as const;

/** Reverse of {@link SystemPropertyKey}: wire key → system property name. */
export const SYSTEM_PROPERTY_BY_WIRE_KEY: ReadonlyMap<string, string> = new Map(
  Object.entries(SystemPropertyKey).map(([name, wire]) => [wire, name]),
);

/**
 * Memoizes a pure string function for short inputs. Keys and common values (`%24.on`,
 * `application%2Fjson`, module ids) repeat on every message; the cache stops growing at `max`
 * entries so client-chosen strings cannot inflate it.
 */
function memoized(fn: (text: string) => string, max = 1024): (text: string) => string {
  const cache = new Map<string, string>();
  return (text) => {
    let result = cache.get(text);
    if (result === undefined) {
      result = fn(text);
      if (text.length <= 64 && cache.size < max) cache.set(text, result);
    }
    return result;
  };
}

function decodeComponent(text: string): string {
  if (!text.includes('%') && !text.includes('+')) return text;
  try {
    // querystring semantics: `+` is a space (the SDK encodes with querystring.stringify).
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return text;
  }
}

const safeDecode = memoized(decodeComponent);
const encode = memoized(encodeURIComponent);

/**
 * Decodes a property bag. Malformed escapes are kept literally rather than thrown, because the
 * bag comes from untrusted clients and must never crash the hub.
 */
export function decodePropertyBag(segment: string): PropertyBag {
  const bag: PropertyBag = new Map();
  if (segment.length === 0) return bag;
  for (const pair of segment.split('&')) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf('=');
    const key = safeDecode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : safeDecode(pair.slice(eq + 1));
    bag.set(key, value);
  }
  return bag;
}

/** Encodes properties the way edgeHub does: `encodeURIComponent` on keys and values. */
export function encodePropertyBag(props: Iterable<readonly [string, string]>): string {
  const parts: string[] = [];
  for (const [k, v] of props) parts.push(`${encode(k)}=${encode(v)}`);
  return parts.join('&');
}
