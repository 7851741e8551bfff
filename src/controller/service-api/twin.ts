import { leafTwinModule, type StoredTwin } from '../../common/cloudplane/layout.js';
import { ErrorCode, errorMessage, isKedgeError } from '../../common/errors.js';
import {
  depthOf,
  isJsonObject,
  MAX_TWIN_DEPTH,
  mergePatch,
} from '../../common/iothub/twin-patch.js';
import type { DeviceBackend } from '../backend/device-backend.js';
import type { LeafParentOf } from './invoke.js';
import {
  failure,
  jsonObjectBody,
  SERVICE_API_GROUP,
  SERVICE_API_VERSION,
  type Reply,
  type Subresource,
} from './server.js';

/** What the twin subresource needs from the cloud plane. */
export type TwinBackend = Pick<DeviceBackend, 'reportedTwin' | 'desiredTwin' | 'patchDesiredTwin'>;

/** A desired patch body, twin-shaped as IoT Hub's service API takes it, with room to spare. */
const MAX_PATCH_BYTES = 64 * 1024;

/** Whose twin a request names: a module of a device, or a leaf behind its parent. */
interface TwinTarget {
  /** The device whose hub holds the twin. */
  device: string;
  /** The twin's key under that device: the module id, or the leaf's {@link leafTwinModule}. */
  module: string;
  /** How the answer names it. */
  ids: { deviceId: string; moduleId?: string };
}

/**
 * `edgedevices/{name}/twin?moduleId=…` (a leaf device: no `moduleId`):
 * - `GET` (RBAC verb `get`): the twin's reported properties as the cloud plane merged them, and
 *   the desired patches sent through this API;
 * - `PATCH` (verb `patch`), body `{"properties":{"desired":{…}}}`: a JSON merge patch of desired
 *   properties. The device gets it now or when it next connects; the module gets it as a desired
 *   patch, with no restart. It and the EdgeDeployment's `desiredProperties` write one document,
 *   last writer per key (docs/adr/0019-live-desired-properties.md).
 */
export function twinSubresource(
  backend: TwinBackend,
  leafParentOf: LeafParentOf = () => undefined,
): Subresource {
  return {
    name: 'twin',
    kind: 'ModuleTwin',
    verbs: { GET: 'get', PATCH: 'patch' },
    maxBodyBytes: MAX_PATCH_BYTES,
    handle: async ({ namespace, device, method, query, body }) => {
      const target = twinTarget(device, query, leafParentOf(namespace, device));
      if ('status' in target) return target;
      if (method === 'PATCH') {
        const patch = desiredPatch(body);
        if (typeof patch === 'string') return failure(400, 'BadRequest', `kedge: ${patch}`);
        try {
          await backend.patchDesiredTwin(namespace, target.device, target.module, patch);
        } catch (err) {
          if (isKedgeError(err, ErrorCode.LimitExceeded))
            return failure(413, 'RequestEntityTooLarge', `kedge: ${errorMessage(err)}`);
          throw err;
        }
      }
      const [reported, desired] = await Promise.all([
        backend.reportedTwin(namespace, target.device, target.module),
        backend.desiredTwin(namespace, target.device, target.module),
      ]);
      if (!reported && !desired) {
        const what = target.ids.moduleId
          ? `module ${target.ids.moduleId} of ${namespace}/${device}`
          : `leaf device ${namespace}/${device}`;
        return failure(404, 'NotFound', `kedge: ${what} has no twin properties yet`);
      }
      return { status: 200, body: twinDocument(target, reported, desired) };
    },
  };
}

function twinTarget(
  device: string,
  query: URLSearchParams,
  leaf: ReturnType<LeafParentOf>,
): TwinTarget | Reply {
  const moduleId = query.get('moduleId');
  if (leaf) {
    if (leaf.problem) return failure(409, 'Conflict', `kedge: ${leaf.problem}`);
    if (moduleId)
      return failure(
        400,
        'BadRequest',
        'kedge: the EdgeDevice is a leaf device, which has no modules: leave moduleId out',
      );
    return { device: leaf.parent, module: leafTwinModule(device), ids: { deviceId: device } };
  }
  if (!moduleId)
    return failure(400, 'BadRequest', 'kedge: the moduleId query parameter is required');
  return { device, module: moduleId, ids: { deviceId: device, moduleId } };
}

/** The desired properties of a twin-shaped patch body, or what is wrong with it. */
function desiredPatch(body: string): Record<string, unknown> | string {
  const parsed = jsonObjectBody<Record<string, unknown>>(body, 'object', false);
  if (typeof parsed === 'string') return parsed;
  const extra = Object.keys(parsed).filter((k) => k !== 'properties');
  if (extra.length > 0)
    return `a twin patch carries only properties.desired; ${extra.join(', ')} is not supported`;
  const properties = parsed.properties;
  if (isJsonObject(properties) && Object.keys(properties).some((k) => k !== 'desired'))
    return "reported properties are the device's own: only properties.desired may be patched";
  if (!isJsonObject(properties) || !isJsonObject(properties.desired))
    return 'the body must be {"properties":{"desired":{…}}}';
  if (depthOf(properties.desired) > MAX_TWIN_DEPTH)
    return `desired properties nest deeper than ${MAX_TWIN_DEPTH} levels`;
  return properties.desired;
}

function twinDocument(
  target: TwinTarget,
  reported: StoredTwin | undefined,
  desired: StoredTwin | undefined,
): object {
  return {
    apiVersion: `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`,
    kind: target.ids.moduleId ? 'ModuleTwin' : 'DeviceTwin',
    ...target.ids,
    properties: {
      // The composed patches keep their nulls for the device; a reader sees the properties.
      desired: { ...mergePatch({}, desired?.properties ?? {}), $version: desired?.version ?? 0 },
      reported: { ...reported?.properties, $version: reported?.version ?? 0 },
    },
  };
}
