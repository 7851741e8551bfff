import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { KubeClient } from '../kube/client.js';
import { frontProxyUser, type EndUser, type FrontProxyConfig } from './front-proxy.js';
import {
  isMetricsPath,
  METRICS_API_GROUP,
  serveMetrics,
  type AccessCheck,
  type MetricsSource,
} from './metrics-api.js';

/** The service API's group: apart from the CRD group `kedge.io`, so RBAC on one never grants the other. */
export const SERVICE_API_GROUP = 'api.kedge.io';
export const SERVICE_API_VERSION = 'v1alpha1';
/** The APIService that registers the group with the API server's aggregator. */
export const APISERVICE_NAME = `${SERVICE_API_VERSION}.${SERVICE_API_GROUP}`;
const GROUP_VERSION = `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`;
/** `/apis/api.kedge.io/v1alpha1/namespaces/{ns}/edgedevices/{name}/{subresource}` */
const SUBRESOURCE_PATH = new RegExp(
  `^/apis/${SERVICE_API_GROUP.replaceAll('.', '\\.')}/${SERVICE_API_VERSION}/namespaces/([^/]+)/edgedevices/([^/]+)/([^/]+)$`,
);

/** A request to one EdgeDevice subresource, authenticated and authorized. */
export interface SubresourceRequest {
  namespace: string;
  device: string;
  method: string;
  /** The request body, read up to the subresource's limit. */
  body: string;
  query: URLSearchParams;
  user: EndUser;
}

/** What a subresource answers: a status code and a JSON object. */
export interface Reply {
  status: number;
  body: object;
}

/**
 * One subresource of an EdgeDevice (`edgedevices/<name>`): the unit the service API grows by.
 * The router authenticates and authorizes before `handle` runs.
 */
export interface Subresource {
  name: string;
  /** The Kind it accepts, for discovery. */
  kind: string;
  /** The RBAC verb each HTTP method needs, e.g. `{ POST: 'create' }`. */
  verbs: Readonly<Record<string, string>>;
  maxBodyBytes: number;
  handle(request: SubresourceRequest): Promise<Reply>;
}

/** What the service API needs from the controller. */
export interface ServiceApiDeps {
  client: KubeClient;
  log: Logger;
  frontProxy: FrontProxyConfig;
  /** True when the EdgeDevice exists (informer cache). */
  deviceExists(namespace: string, device: string): boolean;
  subresources: readonly Subresource[];
  /** Serve `metrics.k8s.io` from these (a cluster without metrics-server); absent, it is not served. */
  metrics?: MetricsSource;
}

/** Options for {@link startServiceApi}. */
export interface ServiceApiOptions {
  port: number;
  host?: string;
  tls: { certPem: string; keyPem: string };
}

/**
 * The aggregated API the API server proxies `/apis/api.kedge.io/…` to. It believes only the
 * API server's front proxy (client certificate from the requestheader CA, allowed name), takes
 * the end user from its `X-Remote-*` headers, and asks the API server (SubjectAccessReview)
 * whether that user may use the subresource on that EdgeDevice.
 */
export async function startServiceApi(
  options: ServiceApiOptions,
  deps: ServiceApiDeps,
): Promise<Server> {
  const server = createServer(
    {
      cert: options.tls.certPem,
      key: options.tls.keyPem,
      ...(deps.frontProxy.clientCaPem ? { ca: deps.frontProxy.clientCaPem } : {}),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) =>
      void route(req, res, deps).catch((err: unknown) => {
        deps.log.warn({ path: req.url, reason: errorMessage(err) }, 'service API request failed');
        reply(res, failure(500, 'InternalError', `kedge: ${errorMessage(err)}`));
      }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  deps: ServiceApiDeps,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://service-api');
  if (url.pathname === '/healthz') return void res.end('ok');
  const user = frontProxyUser(req, deps.frontProxy);
  if (!user)
    return reply(
      res,
      failure(
        401,
        'Unauthorized',
        'kedge: only the API server front proxy may call the service API',
      ),
    );
  const discovered = discovery(url.pathname, deps.subresources, deps.metrics !== undefined);
  if (discovered) return reply(res, { status: 200, body: discovered });
  if (deps.metrics && isMetricsPath(url.pathname)) {
    const source = deps.metrics;
    const access: AccessCheck = (u, attributes) => review(deps.client, u, attributes);
    return reply(res, await serveMetrics(url.pathname, url.searchParams, user, { source, access }));
  }
  await serveSubresource(req, res, { deps, url, user });
}

async function serveSubresource(
  req: IncomingMessage,
  res: ServerResponse,
  { deps, url, user }: { deps: ServiceApiDeps; url: URL; user: EndUser },
): Promise<void> {
  const match = SUBRESOURCE_PATH.exec(url.pathname);
  if (!match) return reply(res, failure(404, 'NotFound', `kedge: ${url.pathname} is not served`));
  const [namespace, device, name] = match.slice(1).map(decodeURIComponent) as [
    string,
    string,
    string,
  ];
  const sub = deps.subresources.find((s) => s.name === name);
  if (!sub)
    return reply(res, failure(404, 'NotFound', `kedge: edgedevices have no subresource ${name}`));
  const { method = 'GET' } = req;
  const verb = sub.verbs[method];
  if (!verb) {
    const allowed = Object.keys(sub.verbs).join(', ');
    return reply(
      res,
      failure(405, 'MethodNotAllowed', `kedge: edgedevices/${name} takes ${allowed}`),
    );
  }
  const denied = await authorize(deps.client, user, { namespace, device, subresource: name, verb });
  if (denied !== undefined) return reply(res, failure(403, 'Forbidden', denied));
  if (!deps.deviceExists(namespace, device)) {
    const message = `edgedevices.kedge.io "${device}" not found in namespace ${namespace}`;
    return reply(res, failure(404, 'NotFound', message));
  }
  const body = await readBody(req, sub.maxBodyBytes);
  if (body === undefined) {
    const message = `kedge: request body over ${sub.maxBodyBytes} bytes`;
    return reply(res, failure(413, 'RequestEntityTooLarge', message));
  }
  reply(res, await sub.handle({ namespace, device, method, body, query: url.searchParams, user }));
}

/** Discovery documents for `/apis`, the group and the version; undefined for other paths. */
function discovery(
  path: string,
  subresources: readonly Subresource[],
  metrics: boolean,
): object | undefined {
  const group = {
    name: SERVICE_API_GROUP,
    versions: [{ groupVersion: GROUP_VERSION, version: SERVICE_API_VERSION }],
    preferredVersion: { groupVersion: GROUP_VERSION, version: SERVICE_API_VERSION },
  };
  if (path === '/apis' || path === '/apis/')
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: metrics ? [group, METRICS_API_GROUP] : [group],
    };
  if (path === `/apis/${SERVICE_API_GROUP}`)
    return { kind: 'APIGroup', apiVersion: 'v1', ...group };
  if (path !== `/apis/${GROUP_VERSION}`) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: GROUP_VERSION,
    // Subresources only: listing `edgedevices` itself would shadow the CRD for `kubectl get`.
    resources: subresources.map((s) => ({
      name: `edgedevices/${s.name}`,
      singularName: '',
      namespaced: true,
      kind: s.kind,
      verbs: [...new Set(Object.values(s.verbs))],
    })),
  };
}

/** Undefined when allowed, else the reason to give the user. */
async function authorize(
  client: KubeClient,
  user: EndUser,
  target: { namespace: string; device: string; subresource: string; verb: string },
): Promise<string | undefined> {
  return review(client, user, {
    group: SERVICE_API_GROUP,
    version: SERVICE_API_VERSION,
    resource: 'edgedevices',
    subresource: target.subresource,
    verb: target.verb,
    namespace: target.namespace,
    name: target.device,
  });
}

/** A SubjectAccessReview for the end user: undefined when allowed, else the reason to give. */
async function review(
  client: KubeClient,
  user: EndUser,
  attributes: {
    group: string;
    version?: string;
    resource: string;
    subresource?: string;
    verb: string;
    namespace?: string;
    name?: string;
  },
): Promise<string | undefined> {
  const result = await client.request<{ status?: { allowed?: boolean; reason?: string } }>({
    method: 'POST',
    path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: user.user,
        ...(user.uid ? { uid: user.uid } : {}),
        groups: user.groups,
        extra: user.extra,
        resourceAttributes: attributes,
      },
    },
  });
  if (result.status?.allowed === true) return undefined;
  const why = result.status?.reason ? ` (${result.status.reason})` : '';
  const resource = attributes.subresource
    ? `${attributes.resource}/${attributes.subresource}`
    : attributes.resource;
  const target = attributes.name
    ? `${attributes.resource}.${attributes.group} "${attributes.name}"`
    : `${attributes.resource}.${attributes.group}`;
  const scope = attributes.namespace
    ? ` in the namespace "${attributes.namespace}"`
    : ' at the cluster scope';
  return (
    `${target} is forbidden: User "${user.user}" cannot ${attributes.verb} resource ` +
    `"${resource}" in API group "${attributes.group}"${scope}${why}`
  );
}

/** A Kubernetes `Status` reply, so kubectl and client libraries show the message as it is. */
/**
 * A request body as a JSON object, or the message that says the body must be a JSON `kind`.
 * An empty body is `{}` when `emptyIsObject`, else refused.
 */
export function jsonObjectBody<T>(body: string, kind: string, emptyIsObject: boolean): T | string {
  const invalid = `the request body must be a JSON ${kind}`;
  if (!body && emptyIsObject) return {} as T;
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as T;
  } catch {
    // Answered below.
  }
  return invalid;
}

export function failure(code: number, reason: string, message: string): Reply {
  return {
    status: code,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    },
  };
}

function reply(res: ServerResponse, { status, body }: Reply): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage, limitBytes: number): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
