import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { kubectl } from './kubectl.js';
import { CHART_DIR, DEPLOY_RELEASE } from './render-deploy.js';

const run = promisify(execFile);

/** Where a controller outside the cluster serves the service API. */
export interface ExternalServiceApi {
  /** An address the API server can reach; not loopback (EndpointSlices refuse it). */
  address: string;
  port: number;
  /** The controller's namespace. */
  namespace: string;
  /** Also register `metrics.k8s.io` with it (the controller's `metricsApi`). */
  metricsApi?: boolean;
}

/** How long the aggregator may take to find the service API available. */
const AVAILABLE_TIMEOUT = '90s';

/**
 * Installs the chart's APIService, Service and an EndpointSlice to a controller running outside
 * the cluster (`kedge up`, tests): the same template the chart installs, so both stay one source.
 */
export async function installExternalServiceApi(
  tools: { helm: string; kubectlDir: string },
  kubeconfig: string | undefined,
  where: ExternalServiceApi,
): Promise<void> {
  const rendered = await run(tools.helm, [
    'template',
    DEPLOY_RELEASE.name,
    CHART_DIR,
    '--namespace',
    where.namespace,
    '--show-only',
    'templates/service-api.yaml',
    '--set',
    `serviceApi.external.address=${where.address}`,
    '--set',
    `serviceApi.external.port=${where.port}`,
    ...(where.metricsApi ? ['--set', 'metricsApi.enabled=true'] : []),
  ]).catch((cause: unknown) => {
    throw new KedgeError(ErrorCode.Unavailable, 'helm template of the service API failed', {
      cause,
    });
  });
  const applied = await kubectl(
    tools.kubectlDir,
    kubeconfig,
    ['apply', '-f', '-'],
    rendered.stdout,
  );
  if (applied.code !== 0)
    throw new KedgeError(
      ErrorCode.Unavailable,
      `installing the service API failed: ${applied.stderr.trim()}`,
    );
}

/**
 * Removes what {@link installExternalServiceApi} installed. An APIService left without its
 * server makes discovery fail, and with it namespace deletion, cluster-wide.
 */
export async function removeExternalServiceApi(
  kubectlDir: string,
  kubeconfig: string | undefined,
  namespace: string,
  options: { metricsApi?: boolean } = {},
): Promise<void> {
  const name = `${DEPLOY_RELEASE.name}-api`;
  await kubectl(kubectlDir, kubeconfig, [
    'delete',
    '--ignore-not-found',
    'apiservice/v1alpha1.api.kedge.io',
    // Only when installed here: in a cluster with metrics-server the group is its.
    ...(options.metricsApi ? ['apiservice/v1beta1.metrics.k8s.io'] : []),
  ]);
  await kubectl(kubectlDir, kubeconfig, [
    'delete',
    '--ignore-not-found',
    '-n',
    namespace,
    `service/${name}`,
    `endpointslice/${name}-external`,
  ]);
}

/** Waits until the aggregator reaches the service API (APIService Available). */
export async function waitServiceApiAvailable(
  binDir: string,
  kubeconfig: string | undefined,
): Promise<void> {
  const waited = await kubectl(binDir, kubeconfig, [
    'wait',
    '--for=condition=Available',
    `--timeout=${AVAILABLE_TIMEOUT}`,
    'apiservice/v1alpha1.api.kedge.io',
  ]);
  if (waited.code !== 0)
    throw new KedgeError(
      ErrorCode.Timeout,
      `the service API did not become available: ${waited.stderr.trim()}`,
    );
}
