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

/** A direct-method call on a module of a device, or on a leaf device behind its hub. */
export interface MethodCall {
  /** The module; empty for a leaf device. */
  module: string;
  /** The leaf device behind the device's hub, instead of a module. */
  leaf?: string;
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
  /** The module; left out when the EdgeDevice named in the path is a leaf device. */
  moduleId?: string;
  methodName: string;
  payload?: unknown;
  /** Seconds the module has to answer; defaults to 30, at most 55. */
  responseTimeoutInSeconds?: number;
}

/**
 * Where a request for an EdgeDevice goes when that device is a leaf: its parent's hub, or why
 * the leaf cannot be reached. Undefined for a gateway (a device with modules).
 */
export type LeafParentOf = (
  namespace: string,
  device: string,
) => { parent: string; problem?: string } | undefined;

/**
 * `edgedevices/invoke`: a direct method on a module, or on the leaf device the path names (its
 * parent's hub calls it), RBAC verb `create` on that EdgeDevice.
 */
export function invokeSubresource(
  invoke: InvokeMethod,
  leafParentOf: LeafParentOf = () => undefined,
): Subresource {
  return {
    name: 'invoke',
    kind: 'DirectMethodRequest',
    verbs: { POST: 'create' },
    maxBodyBytes: MAX_REQUEST_BYTES,
    handle: async ({ namespace, device, body }) => {
      const leaf = leafParentOf(namespace, device);
      if (leaf?.problem) return failure(409, 'Conflict', `kedge: ${leaf.problem}`);
      const call = parseCall(body, leaf !== undefined);
      if (typeof call === 'string') return failure(400, 'BadRequest', `kedge: ${call}`);
      try {
        const result = leaf
          ? await invoke(namespace, leaf.parent, { ...call, module: '', leaf: device })
          : await invoke(namespace, device, call);
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

/**
 * The call in a request body, or what is wrong with it. For a leaf device (`leaf`) the body
 * names no module.
 */
export function parseCall(body: string, leaf = false): MethodCall | string {
  const request = jsonObjectBody<Partial<DirectMethodRequest>>(body, 'DirectMethodRequest', true);
  if (typeof request === 'string') return request;
  const moduleProblem = moduleIdProblem(request.moduleId, leaf);
  if (moduleProblem) return moduleProblem;
  if (typeof request.methodName !== 'string' || !request.methodName)
    return 'methodName is required';
  const timeoutSecs = request.responseTimeoutInSeconds ?? DEFAULT_METHOD_TIMEOUT_SECS;
  if (!Number.isInteger(timeoutSecs) || timeoutSecs < 1 || timeoutSecs > MAX_METHOD_TIMEOUT_SECS)
    return `responseTimeoutInSeconds must be a whole number from 1 to ${MAX_METHOD_TIMEOUT_SECS}`;
  return {
    module: request.moduleId ?? '',
    method: request.methodName,
    payload: request.payload ?? null,
    timeoutSecs,
  };
}

/** A leaf device names no module; a device with modules must name one. */
function moduleIdProblem(moduleId: unknown, leaf: boolean): string | undefined {
  if (leaf)
    return moduleId === undefined
      ? undefined
      : 'the EdgeDevice is a leaf device, which has no modules: leave moduleId out';
  return typeof moduleId === 'string' && moduleId ? undefined : 'moduleId is required';
}

function deviceFailure(err: unknown): Reply {
  const message = `kedge: ${errorMessage(err)}`;
  if (isKedgeError(err, ErrorCode.Timeout)) return failure(504, 'Timeout', message);
  if (isKedgeError(err, ErrorCode.Unavailable)) return failure(503, 'ServiceUnavailable', message);
  return failure(500, 'InternalError', message);
}
