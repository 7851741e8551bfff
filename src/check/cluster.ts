/**
 * `kedge check --cluster`: from a machine with a kubeconfig, whether the cluster side is in
 * place: API server, CRDs, the controller's aggregated API, gateway endpoints, and one device.
 */
import { errorMessage } from '../common/errors.js';
import type { KubeClient, KubeObject } from '../controller/kube/client.js';
import { fail, ok, warn, type CheckResult } from './result.js';

/** The three kinds kedge installs. */
export const KEDGE_CRDS = ['edgedevices.kedge.io', 'edgedeployments.kedge.io', 'routes.kedge.io'];
/** The controller's aggregated API (invoke, c2d, module logs). */
export const KEDGE_APISERVICE = 'v1alpha1.api.kedge.io';
/** The Service devices dial. */
export const GATEWAY_SERVICE = 'kedge-gateway';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

type WithConditions = KubeObject & { status?: { conditions?: Condition[] } };

function condition(obj: WithConditions | undefined, type: string): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

/** A CRD judged by its Established condition. */
export function judgeCrd(name: string, crd: WithConditions | undefined): CheckResult {
  const check = `CRD ${name}`;
  if (!crd)
    return fail(
      check,
      'not installed',
      'kubectl apply --server-side -f deploy/crds/ (or install the Helm chart)',
    );
  const established = condition(crd, 'Established');
  return established?.status === 'True'
    ? ok(check, 'established')
    : fail(
        check,
        `not established: ${established?.message ?? 'no condition yet'}`,
        'kubectl describe crd ' + name,
      );
}

/** The APIService judged by its Available condition. */
export function judgeApiService(api: WithConditions | undefined): CheckResult {
  const check = `APIService ${KEDGE_APISERVICE}`;
  if (!api)
    return fail(
      check,
      'not registered',
      'install kedge (deploy/ or the Helm chart); kedge invoke and module logs need it',
    );
  const available = condition(api, 'Available');
  return available?.status === 'True'
    ? ok(check, 'available')
    : fail(
        check,
        `not available: ${available?.reason ?? ''} ${available?.message ?? ''}`.trim(),
        'the controller must run and Service kedge-api have endpoints; see docs/troubleshooting.md',
      );
}

interface EndpointSlice extends KubeObject {
  endpoints?: { conditions?: { ready?: boolean } }[];
}

/** The gateway Service judged by the ready endpoints of its EndpointSlices. */
export function judgeGatewayEndpoints(namespace: string, slices: EndpointSlice[]): CheckResult {
  const check = `Service ${namespace}/${GATEWAY_SERVICE}`;
  const ready = slices
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready !== false).length;
  return ready > 0
    ? ok(check, `${ready} ready endpoint(s)`)
    : fail(
        check,
        'no ready endpoints: devices cannot connect',
        `kubectl get pods -n ${namespace} -l app.kubernetes.io/component=gateway; gateways wait for Secret kedge-gateway-tls, which the controller writes`,
      );
}

type EdgeDeviceLike = KubeObject & {
  status?: { phase?: string; lastSeen?: string; conditions?: Condition[] };
};

/** One device: connected, Ready, and every False condition named. */
export function judgeDevice(ref: string, device: EdgeDeviceLike | undefined): CheckResult {
  const check = `device ${ref}`;
  if (!device)
    return fail(check, 'no such EdgeDevice', 'kubectl get edgedevices -A lists the devices');
  const s = device.status ?? {};
  const falses = (s.conditions ?? [])
    .filter((c) => c.status !== 'True')
    .map(
      (c) =>
        `${c.type}=${c.status}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`,
    );
  const found = `phase ${s.phase ?? 'none'}, lastSeen ${s.lastSeen ?? 'never'}${falses.length ? `; ${falses.join('; ')}` : ''}`;
  if (s.phase !== 'Connected')
    return fail(
      check,
      found,
      s.phase === 'Pending' || !s.phase
        ? 'the device never connected: run kedge check on the device'
        : 'its heartbeat stopped: run kedge check on the device, then journalctl -u kedge-node',
    );
  if (falses.length > 0)
    return warn(
      check,
      found,
      `kubectl describe edgedevice -n ${device.metadata.namespace} ${device.metadata.name}`,
    );
  return ok(check, found);
}

async function find<T extends KubeObject>(
  client: KubeClient,
  path: string,
): Promise<T | undefined> {
  try {
    return await client.request<T>({ method: 'GET', path });
  } catch (err) {
    if ((err as { status?: number }).status === 404) return undefined;
    throw err;
  }
}

/** Inputs of {@link runClusterChecks}. */
export interface ClusterCheckOptions {
  client: KubeClient;
  /** Namespace of the controller and gateways. */
  namespace: string;
  /** `<namespace>/<name>` of a device to look at. */
  device?: string;
}

async function checkApiServer(client: KubeClient): Promise<CheckResult> {
  const server = client.kubeConfig.getCurrentCluster()?.server ?? '?';
  try {
    const version = await client.request<{ gitVersion: string }>({
      method: 'GET',
      path: '/version',
    });
    return ok('API server', `${server} answers (Kubernetes ${version.gitVersion})`);
  } catch (err) {
    return fail(
      'API server',
      `${server}: ${errorMessage(err)}`,
      'check the kubeconfig (--kubeconfig or KUBECONFIG) and that the cluster runs',
    );
  }
}

/** Checks every kedge part of the cluster; stops after the API server when it does not answer. */
export async function runClusterChecks(options: ClusterCheckOptions): Promise<CheckResult[]> {
  const { client, namespace } = options;
  const api = await checkApiServer(client);
  if (api.status === 'fail') return [api];
  const results = [api];
  const guarded = async (name: string, run: () => Promise<CheckResult>): Promise<CheckResult> =>
    run().catch((err: unknown) =>
      fail(name, errorMessage(err), 'check your RBAC: kubectl auth can-i get <resource>'),
    );
  for (const name of KEDGE_CRDS)
    results.push(
      await guarded(`CRD ${name}`, async () =>
        judgeCrd(
          name,
          await find(client, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`),
        ),
      ),
    );
  results.push(
    await guarded(`APIService ${KEDGE_APISERVICE}`, async () =>
      judgeApiService(
        await find(client, `/apis/apiregistration.k8s.io/v1/apiservices/${KEDGE_APISERVICE}`),
      ),
    ),
  );
  results.push(
    await guarded(`Service ${namespace}/${GATEWAY_SERVICE}`, async () => {
      const list = await client.request<{ items: EndpointSlice[] }>({
        method: 'GET',
        path: `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices`,
        query: { labelSelector: `kubernetes.io/service-name=${GATEWAY_SERVICE}` },
      });
      return judgeGatewayEndpoints(namespace, list.items);
    }),
  );
  if (options.device)
    results.push(
      await guarded(`device ${options.device}`, () => checkDevice(client, options.device!)),
    );
  return results;
}

async function checkDevice(client: KubeClient, ref: string): Promise<CheckResult> {
  const [ns, name, ...rest] = ref.split('/');
  if (!ns || !name || rest.length > 0)
    return fail(
      `device ${ref}`,
      'not <namespace>/<name>',
      'give --device as e.g. factory/sensor-1',
    );
  const device = await find<EdgeDeviceLike>(
    client,
    `/apis/kedge.io/v1alpha1/namespaces/${encodeURIComponent(ns)}/edgedevices/${encodeURIComponent(name)}`,
  );
  return judgeDevice(ref, device);
}
