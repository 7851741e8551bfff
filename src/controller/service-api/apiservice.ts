import type { Logger } from '../../common/logger.js';
import type { KubeClient, KubeObject, ResourceRef } from '../kube/client.js';
import { METRICS_GROUP, METRICS_VERSION } from '../../provider/metrics-objects.js';
import { APISERVICE_NAME } from './server.js';

/** The APIService of `metrics.k8s.io` when the controller serves it (`metricsApi`). */
export const METRICS_APISERVICE_NAME = `${METRICS_VERSION}.${METRICS_GROUP}`;

const APISERVICES: ResourceRef = {
  apiPath: '/apis/apiregistration.k8s.io/v1',
  plural: 'apiservices',
};

type ApiService = KubeObject & { spec?: { caBundle?: string } };

/**
 * Points the APIService's `caBundle` at the controller CA, so the aggregator verifies the
 * service API's certificate. The chart installs the APIService without it: the CA is made by
 * the controller at its first start. The controller may patch its own APIServices only.
 */
export async function ensureApiServiceCaBundle(
  client: KubeClient,
  caPem: string,
  log: Logger,
  name: string = APISERVICE_NAME,
): Promise<void> {
  const apiService = await client.find<ApiService>(APISERVICES, name);
  if (!apiService) {
    log.warn(
      { apiService: name },
      'APIService not installed: the API group it registers is unreachable until it is',
    );
    return;
  }
  const caBundle = Buffer.from(caPem).toString('base64');
  if (apiService.spec?.caBundle === caBundle) return;
  await client.patch(APISERVICES, name, { spec: { caBundle } });
  log.info({ apiService: name }, 'APIService caBundle set to the controller CA');
}
