import { randomUUID } from 'node:crypto';
import { C2D_MAX_TTL_SECS } from '../../common/cloudplane/nats.js';
import { ErrorCode, errorMessage, isKedgeError } from '../../common/errors.js';
import type { C2dSend } from '../backend/device-backend.js';
import {
  failure,
  jsonObjectBody,
  SERVICE_API_GROUP,
  SERVICE_API_VERSION,
  type Reply,
  type Subresource,
} from './server.js';
import type { LeafParentOf } from './invoke.js';

/** Queues a C2D message on the cloud plane (today `backend.sendC2D`). */
export type SendC2d = (namespace: string, device: string, message: C2dSend) => Promise<void>;

/** IoT Hub's default C2D time to live. */
export const DEFAULT_C2D_TTL_SECS = 3600;
/** IoT Hub's largest C2D message body. */
export const MAX_C2D_BODY_BYTES = 64 * 1024;
/** IoT Hub device ids: up to 128 of these characters. */
const DEVICE_ID = /^[A-Za-z0-9\-:.+%_#*?!(),=@$']{1,128}$/;

/** The body of `POST …/edgedevices/{name}/c2d`, with IoT Hub's message field names. */
export interface CloudToDeviceMessage {
  apiVersion?: string;
  kind?: 'CloudToDeviceMessage';
  /**
   * The leaf device behind this edge device that the message is for. When the path names a leaf
   * EdgeDevice itself, it may be left out (it is that leaf).
   */
  deviceId?: string;
  /** The body: text, or base64 when `payloadEncoding` is `base64`. */
  payload: string;
  payloadEncoding?: 'utf-8' | 'base64';
  properties?: Record<string, string>;
  messageId?: string;
  correlationId?: string;
  contentType?: string;
  contentEncoding?: string;
  /** Seconds the message waits for its device; default 3600, at most 48 h. */
  ttlInSeconds?: number;
}

/**
 * `edgedevices/c2d`: a cloud-to-device message for a leaf device behind this edge device, RBAC
 * verb `create`. It is stored in the cloud plane and answered 202 at once; the device gets it
 * when it is (next) connected, unless its TTL ends first.
 */
export function c2dSubresource(
  send: SendC2d,
  leafParentOf: LeafParentOf = () => undefined,
): Subresource {
  return {
    name: 'c2d',
    kind: 'CloudToDeviceMessage',
    verbs: { POST: 'create' },
    // A base64 body of 64 KiB, plus room for the other fields.
    maxBodyBytes: Math.ceil((MAX_C2D_BODY_BYTES * 4) / 3) + 16 * 1024,
    handle: async ({ namespace, device, body }) => {
      const leaf = leafParentOf(namespace, device);
      if (leaf?.problem) return failure(409, 'Conflict', `kedge: ${leaf.problem}`);
      const message = parseC2d(body, Date.now(), leaf ? device : undefined);
      if (typeof message === 'string') return failure(400, 'BadRequest', `kedge: ${message}`);
      try {
        await send(namespace, leaf?.parent ?? device, message.send);
        return {
          status: 202,
          body: {
            apiVersion: `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`,
            kind: 'CloudToDeviceMessageStatus',
            deviceId: message.send.leaf,
            messageId: message.send.properties['$.mid'],
            expiryTimeUtc: message.expiresAt,
          },
        };
      } catch (err) {
        return sendFailure(err);
      }
    },
  };
}

/**
 * The message in a request body, with its system properties set, or what is wrong with it.
 * `leaf` is the leaf EdgeDevice the path names, when it names one: the message is for it.
 */
export function parseC2d(
  body: string,
  nowMs: number,
  leaf?: string,
): { send: C2dSend; expiresAt: string } | string {
  const request = jsonObjectBody<Partial<CloudToDeviceMessage>>(
    body,
    'CloudToDeviceMessage',
    false,
  );
  if (typeof request === 'string') return request;
  const leafProblem = defaultToLeaf(request, leaf);
  if (leafProblem) return leafProblem;
  if (typeof request.deviceId !== 'string' || !DEVICE_ID.test(request.deviceId))
    return "deviceId must name the leaf device (up to 128 letters, digits and -:.+%_#*?!(),=@$')";
  const payload = parsePayload(request);
  if (typeof payload === 'string') return payload;
  const ttlSecs = request.ttlInSeconds ?? DEFAULT_C2D_TTL_SECS;
  if (!Number.isInteger(ttlSecs) || ttlSecs < 1 || ttlSecs > C2D_MAX_TTL_SECS)
    return `ttlInSeconds must be a whole number from 1 to ${C2D_MAX_TTL_SECS}`;
  const expiresAt = new Date(nowMs + ttlSecs * 1000).toISOString();
  const properties = parseProperties(request, expiresAt);
  if (typeof properties === 'string') return properties;
  return { send: { leaf: request.deviceId, body: payload, properties, ttlSecs }, expiresAt };
}

/** For a leaf EdgeDevice, the message is for that leaf: `deviceId` may only name it. */
function defaultToLeaf(
  request: Partial<CloudToDeviceMessage>,
  leaf: string | undefined,
): string | undefined {
  if (leaf === undefined) return undefined;
  if (request.deviceId !== undefined && request.deviceId !== leaf)
    return `the EdgeDevice is the leaf device ${leaf}; deviceId must be ${leaf} or left out`;
  request.deviceId = leaf;
  return undefined;
}

function parsePayload(request: Partial<CloudToDeviceMessage>): Buffer | string {
  if (typeof request.payload !== 'string') return 'payload must be a string';
  const encoding = request.payloadEncoding ?? 'utf-8';
  if (encoding !== 'utf-8' && encoding !== 'base64')
    return 'payloadEncoding must be utf-8 or base64';
  const payload = Buffer.from(request.payload, encoding === 'base64' ? 'base64' : 'utf8');
  if (payload.length > MAX_C2D_BODY_BYTES)
    return `the payload is ${payload.length} bytes; a C2D message carries at most ${MAX_C2D_BODY_BYTES}`;
  return payload;
}

/** Application properties plus the system properties IoT Hub sets on a C2D message. */
function parseProperties(
  request: Partial<CloudToDeviceMessage>,
  expiresAt: string,
): Record<string, string> | string {
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.properties ?? {})) {
    if (typeof value !== 'string') return `property ${key} must be a string`;
    if (key.startsWith('$')) return `property ${key}: names starting with $ are reserved`;
    properties[key] = value;
  }
  const system: [string, unknown][] = [
    ['$.mid', request.messageId ?? randomUUID()],
    ['$.cid', request.correlationId],
    ['$.ct', request.contentType],
    ['$.ce', request.contentEncoding],
    ['$.to', `/devices/${request.deviceId}/messages/devicebound`],
    ['$.exp', expiresAt],
  ];
  for (const [key, value] of system) {
    if (value === undefined) continue;
    if (typeof value !== 'string') return `${key} must be a string`;
    properties[key] = value;
  }
  return properties;
}

function sendFailure(err: unknown): Reply {
  const message = `kedge: ${errorMessage(err)}`;
  // IoT Hub answers a full device queue with 403 (DeviceMaximumQueueDepthExceeded).
  if (isKedgeError(err, ErrorCode.LimitExceeded)) return failure(403, 'Forbidden', message);
  if (isKedgeError(err, ErrorCode.Unavailable)) return failure(503, 'ServiceUnavailable', message);
  return failure(500, 'InternalError', message);
}
