import type { MethodResponse } from '../../common/cloudlink/protocol.js';
import { ErrorCode, errorMessage, isKedgeError } from '../../common/errors.js';
import {
  failure,
  jsonObjectBody,
  SERVICE_API_GROUP,
  SERVICE_API_VERSION,
  type Reply,
  type Subresource,
} from './server.js';

/** A direct-method call on a module of a device. */
export interface MethodCall {
  module: string;
  method: string;
  payload: unknown;
  timeoutSecs: number;
}

/** Calls a direct method over the device's link (today `hub.invokeMethod`). */
export type InvokeMethod = (
  namespace: string,
  device: string,
  call: MethodCall,
) => Promise<MethodResponse>;

/** IoT Hub's default direct-method response timeout. */
export const DEFAULT_METHOD_TIMEOUT_SECS = 30;
/**
 * The API server ends a plain (non-watch) request after 60 s (`--request-timeout`), so a method
 * may take at most a little less; IoT Hub's own ceiling (300 s) cannot pass through it.
 */
export const MAX_METHOD_TIMEOUT_SECS = 55;
/** Largest method payload accepted, as IoT Hub's 128 KiB, plus room for the request's fields. */
const MAX_REQUEST_BYTES = 128 * 1024 + 4096;

/**
 * The body of `POST …/edgedevices/{name}/invoke`, named as IoT Hub's service API names its
 * fields, so code written against IoT Hub reads the same.
 */
export interface DirectMethodRequest {
  apiVersion?: string;
  kind?: 'DirectMethodRequest';
  moduleId: string;
  methodName: string;
  payload?: unknown;
  /** Seconds the module has to answer; defaults to 30, at most 55. */
  responseTimeoutInSeconds?: number;
}

/** `edgedevices/invoke`: a direct method on a module, RBAC verb `create`. */
export function invokeSubresource(invoke: InvokeMethod): Subresource {
  return {
    name: 'invoke',
    kind: 'DirectMethodRequest',
    verbs: { POST: 'create' },
    maxBodyBytes: MAX_REQUEST_BYTES,
    handle: async ({ namespace, device, body }) => {
      const call = parseCall(body);
      if (typeof call === 'string') return failure(400, 'BadRequest', `kedge: ${call}`);
      try {
        const result = await invoke(namespace, device, call);
        return {
          status: 200,
          body: {
            apiVersion: `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`,
            kind: 'DirectMethodResponse',
            status: result.status,
            payload: result.payload,
          },
        };
      } catch (err) {
        return deviceFailure(err);
      }
    },
  };
}

/** The call in a request body, or what is wrong with it. */
export function parseCall(body: string): MethodCall | string {
  const request = jsonObjectBody<Partial<DirectMethodRequest>>(body, 'DirectMethodRequest', true);
  if (typeof request === 'string') return request;
  if (typeof request.moduleId !== 'string' || !request.moduleId) return 'moduleId is required';
  if (typeof request.methodName !== 'string' || !request.methodName)
    return 'methodName is required';
  const timeoutSecs = request.responseTimeoutInSeconds ?? DEFAULT_METHOD_TIMEOUT_SECS;
  if (!Number.isInteger(timeoutSecs) || timeoutSecs < 1 || timeoutSecs > MAX_METHOD_TIMEOUT_SECS)
    return `responseTimeoutInSeconds must be a whole number from 1 to ${MAX_METHOD_TIMEOUT_SECS}`;
  return {
    module: request.moduleId,
    method: request.methodName,
    payload: request.payload ?? null,
    timeoutSecs,
  };
}

function deviceFailure(err: unknown): Reply {
  const message = `kedge: ${errorMessage(err)}`;
  if (isKedgeError(err, ErrorCode.Timeout)) return failure(504, 'Timeout', message);
  if (isKedgeError(err, ErrorCode.Unavailable)) return failure(503, 'ServiceUnavailable', message);
  return failure(500, 'InternalError', message);
}
