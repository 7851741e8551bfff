import { leafTwinModule } from '../../common/cloudplane/layout.js';
import type { ReportedTwin } from '../backend/device-backend.js';
import type { LeafParentOf } from './invoke.js';
import {
  failure,
  SERVICE_API_GROUP,
  SERVICE_API_VERSION,
  type Reply,
  type Subresource,
} from './server.js';

/** Reads a module's reported twin from the cloud plane (today `backend.reportedTwin`). */
export type ReadTwin = (
  namespace: string,
  device: string,
  module: string,
) => Promise<ReportedTwin | undefined>;

/**
 * `GET edgedevices/{name}/twin?moduleId=…`: a module twin's reported properties as the cloud
 * plane merged them, RBAC verb `get` on `edgedevices/twin`. Desired properties come from the
 * EdgeDeployment, where users already read them.
 */
export function twinSubresource(
  read: ReadTwin,
  leafParentOf: LeafParentOf = () => undefined,
): Subresource {
  return {
    name: 'twin',
    kind: 'ModuleTwin',
    verbs: { GET: 'get' },
    maxBodyBytes: 0,
    handle: async ({ namespace, device, query }) => {
      const leaf = leafParentOf(namespace, device);
      if (leaf) return leafTwin(read, { namespace, device, query }, leaf);
      const moduleId = query.get('moduleId');
      if (!moduleId)
        return failure(400, 'BadRequest', 'kedge: the moduleId query parameter is required');
      const twin = await read(namespace, device, moduleId);
      if (!twin)
        return failure(
          404,
          'NotFound',
          `kedge: module ${moduleId} of ${namespace}/${device} has reported no properties`,
        );
      return {
        status: 200,
        body: {
          apiVersion: `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`,
          kind: 'ModuleTwin',
          deviceId: device,
          moduleId,
          properties: { reported: { ...twin.properties, $version: twin.version } },
        },
      };
    },
  };
}

/**
 * A leaf EdgeDevice's twin (no `moduleId`): its reported properties as its parent's hub forwarded
 * them, kept beside the parent's module twins.
 */
async function leafTwin(
  read: ReadTwin,
  { namespace, device, query }: { namespace: string; device: string; query: URLSearchParams },
  leaf: { parent: string; problem?: string },
): Promise<Reply> {
  if (leaf.problem) return failure(409, 'Conflict', `kedge: ${leaf.problem}`);
  if (query.get('moduleId'))
    return failure(
      400,
      'BadRequest',
      'kedge: the EdgeDevice is a leaf device, which has no modules: leave moduleId out',
    );
  const twin = await read(namespace, leaf.parent, leafTwinModule(device));
  if (!twin)
    return failure(
      404,
      'NotFound',
      `kedge: leaf device ${namespace}/${device} has reported no properties`,
    );
  return {
    status: 200,
    body: {
      apiVersion: `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`,
      kind: 'DeviceTwin',
      deviceId: device,
      properties: { reported: { ...twin.properties, $version: twin.version } },
    },
  };
}
