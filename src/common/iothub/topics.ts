/**
 * The IoT Hub MQTT topic grammar as the Azure IoT device SDK for Node.js uses it: telemetry, module
 * outputs, module inputs, twin GET/PATCH/res, direct methods and C2D. Pure string functions shared
 * by the hub and (later) the controller's cloud endpoint.
 */
import { decodePropertyBag, encodePropertyBag, type PropertyBag } from './property-bag.js';

/** An inbound (client → hub) topic, classified. */
export type InboundTopic =
  | { kind: 'telemetry'; deviceId: string; moduleId?: string; properties: PropertyBag }
  | { kind: 'twinGet'; requestId: string }
  /** `version`: the reported `$version` the patch applies to, when the client names it. */
  | { kind: 'twinPatchReported'; requestId: string; version?: string }
  | { kind: 'methodResponse'; status: number; requestId: string }
  | { kind: 'unknown' };

const TWIN_GET = '$iothub/twin/GET/';
const TWIN_PATCH_REPORTED = '$iothub/twin/PATCH/properties/reported/';
const METHOD_RES = '$iothub/methods/res/';

/** Reads `$rid` from a `?$rid=…&…` query. */
function requestIdOf(query: string): string | undefined {
  const q = query.startsWith('?') ? query.slice(1) : query;
  return decodePropertyBag(q).get('$rid');
}

function parseQueryTopic(topic: string, prefix: string): string | undefined {
  if (!topic.startsWith(prefix)) return undefined;
  return requestIdOf(topic.slice(prefix.length));
}

/**
 * Parses `devices/{d}/messages/events[/{bag}][/]` and
 * `devices/{d}/modules/{m}/messages/events[/{bag}][/]`.
 */
function parseTelemetry(topic: string): InboundTopic {
  const parts = topic.split('/');
  if (parts[0] !== 'devices' || !parts[1]) return { kind: 'unknown' };
  const deviceId = parts[1];
  let rest: string[];
  let moduleId: string | undefined;
  if (parts[2] === 'modules') {
    moduleId = parts[3];
    if (!moduleId) return { kind: 'unknown' };
    rest = parts.slice(4);
  } else {
    rest = parts.slice(2);
  }
  if (rest[0] !== 'messages' || rest[1] !== 'events') return { kind: 'unknown' };
  const tail = rest.slice(2).filter((p) => p.length > 0);
  if (tail.length > 1) return { kind: 'unknown' };
  const properties = decodePropertyBag(tail[0] ?? '');
  return moduleId === undefined
    ? { kind: 'telemetry', deviceId, properties }
    : { kind: 'telemetry', deviceId, moduleId, properties };
}

/** Classifies a topic a client published to. Never throws. */
export function parseInboundTopic(topic: string): InboundTopic {
  if (topic.startsWith('devices/')) return parseTelemetry(topic);
  const get = parseQueryTopic(topic, TWIN_GET);
  if (get !== undefined) return { kind: 'twinGet', requestId: get };
  if (topic.startsWith(TWIN_PATCH_REPORTED)) {
    const query = decodePropertyBag(topic.slice(TWIN_PATCH_REPORTED.length).replace(/^\?/, ''));
    const requestId = query.get('$rid');
    const version = query.get('$version');
    if (requestId !== undefined)
      return version === undefined
        ? { kind: 'twinPatchReported', requestId }
        : { kind: 'twinPatchReported', requestId, version };
  }
  if (topic.startsWith(METHOD_RES)) {
    const [status, query = ''] = topic.slice(METHOD_RES.length).split('/');
    const requestId = requestIdOf(query);
    const code = Number(status);
    if (requestId !== undefined && Number.isInteger(code))
      return { kind: 'methodResponse', status: code, requestId };
  }
  return { kind: 'unknown' };
}

/**
 * `devices/{d}/modules/{m}/inputs/{input}/{bag}`. The SDK's regex needs the trailing segment, so
 * the bag is never empty in practice (it always carries `$.cdid`).
 */
export function inputTopic(
  deviceId: string,
  moduleId: string,
  inputName: string,
  bag: Iterable<readonly [string, string]>,
): string {
  return `devices/${deviceId}/modules/${moduleId}/inputs/${inputName}/${encodePropertyBag(bag)}`;
}

/** `devices/{d}/messages/devicebound/{bag}` for cloud-to-device messages. */
export function c2dTopic(deviceId: string, bag: Iterable<readonly [string, string]>): string {
  return `devices/${deviceId}/messages/devicebound/${encodePropertyBag(bag)}`;
}

/** `$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]`. */
export function twinResponseTopic(status: number, requestId: string, version?: number): string {
  const v = version === undefined ? '' : `&$version=${version}`;
  return `$iothub/twin/res/${status}/?$rid=${requestId}${v}`;
}

/** `$iothub/twin/PATCH/properties/desired/?$version={v}`. */
export function desiredPatchTopic(version: number): string {
  return `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
}

/** `$iothub/methods/POST/{method}/?$rid={rid}`. */
export function methodRequestTopic(methodName: string, requestId: string): string {
  return `$iothub/methods/POST/${methodName}/?$rid=${requestId}`;
}

/** The subscription filters a client may use, given its own device and module ids. */
export function allowedSubscriptions(deviceId: string, moduleId?: string): string[] {
  const own =
    moduleId === undefined
      ? `devices/${deviceId}/messages/devicebound/#`
      : `devices/${deviceId}/modules/${moduleId}/inputs/#`;
  return [
    own,
    '$iothub/twin/res/#',
    '$iothub/twin/PATCH/properties/desired/#',
    '$iothub/methods/POST/#',
  ];
}
