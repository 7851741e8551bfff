import type { Logger } from '../../common/logger.js';
import type { KubeClient, KubeObject, ResourceRef } from '../kube/client.js';
import { APISERVICE_NAME } from './server.js';

const APISERVICES: ResourceRef = {
  apiPath: '/apis/apiregistration.k8s.io/v1',
  plural: 'apiservices',
};

type ApiService = KubeObject & { spec?: { caBundle?: string } };

/**
 * Points the APIService's `caBundle` at the controller CA, so the aggregator verifies the
 * service API's certificate. The chart installs the APIService without it: the CA is made by
 * the controller at its first start. The controller may patch this one APIService only.
 */
export async function ensureApiServiceCaBundle(
  client: KubeClient,
  caPem: string,
  log: Logger,
): Promise<void> {
  const apiService = await client.find<ApiService>(APISERVICES, APISERVICE_NAME);
  if (!apiService) {
    log.warn(
      { apiService: APISERVICE_NAME },
      'APIService not installed: kedge invoke and the service API are unreachable until it is',
    );
    return;
  }
  const caBundle = Buffer.from(caPem).toString('base64');
  if (apiService.spec?.caBundle === caBundle) return;
  await client.patch(APISERVICES, APISERVICE_NAME, { spec: { caBundle } });
  log.info({ apiService: APISERVICE_NAME }, 'APIService caBundle set to the controller CA');
}
