import type { ReportedTwin } from '../backend/device-backend.js';
import { failure, SERVICE_API_GROUP, SERVICE_API_VERSION, type Subresource } from './server.js';

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
export function twinSubresource(read: ReadTwin): Subresource {
  return {
    name: 'twin',
    kind: 'ModuleTwin',
    verbs: { GET: 'get' },
    maxBodyBytes: 0,
    handle: async ({ namespace, device, query }) => {
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
