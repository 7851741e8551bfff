import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { LogRequest } from '../common/cloudlink/protocol.js';
import type { StreamEndpoint, StreamOpen } from '../common/cloudlink/streams.js';
import { handleUpgrade } from './kubelet-upgrade.js';
import type { Duplex, Readable } from 'node:stream';
import type { KubeClient } from '../controller/kube/client.js';
import { deviceForNode } from './naming.js';
import { PROMETHEUS_TEXT, renderResourceMetrics, type ResourceUsage } from './resource-metrics.js';

/** An authenticated caller of the kubelet API. */
export interface Caller {
  user: string;
  groups: string[];
}

/** What the kubelet API needs from the rest of the controller. */
export interface KubeletApiDeps {
  client: KubeClient;
  log: Logger;
  /** A pod from the informer cache: its node and container names. */
  pod(
    namespace: string,
    pod: string,
  ): { nodeName?: string; containers: string[]; ports?: Record<string, number[]> } | undefined;
  /** The pod (`namespace/name`) whose container is the module of that name on the node's device. */
  moduleOwner(nodeName: string, module: string): string | undefined;
  /** Streams a module log from its device. */
  streamLogs(namespace: string, device: string, request: Omit<LogRequest, 'id'>): Readable;
  /** Opens an exec, attach or port-forward session with a module on the device. */
  openSession(namespace: string, device: string, open: StreamOpen): StreamEndpoint;
  /** The node's latest usage readings, undefined while its device is not connected or silent. */
  resourceUsage(nodeName: string): ResourceUsage | undefined;
}

/** Options for {@link startKubeletApi}. */
export interface KubeletApiOptions {
  port: number;
  host?: string;
  tls: { certPem: string; keyPem: string };
  /** CA bundle that signs the API server's kubelet client certificate. */
  clientCaPem: string;
}

/** Where direct methods are served since they left the kubelet API. */
const METHODS_MOVED =
  'kedge: direct methods are not served on the kubelet API; use the service API: ' +
  'POST /apis/api.kedge.io/v1alpha1/namespaces/{namespace}/edgedevices/{device}/invoke (kedge invoke)';

const NOT_SUPPORTED = new Set(['run']);
/** Served only over an upgraded (SPDY) connection, by kubelet-upgrade.ts. */
const STREAMING = new Set(['exec', 'attach', 'portForward']);

/**
 * The kubelet HTTPS API the API server proxies to for every kedge node. It authenticates the
 * caller (client certificate, else bearer token by TokenReview), authorizes it with a
 * SubjectAccessReview, streams module logs from the device over its existing link, and serves
 * `/metrics/resource` from the device's latest usage readings.
 */
export async function startKubeletApi(
  options: KubeletApiOptions,
  deps: KubeletApiDeps,
): Promise<Server> {
  const server = createServer(
    {
      cert: options.tls.certPem,
      key: options.tls.keyPem,
      ca: options.clientCaPem,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) =>
      void handle(req, res, deps).catch((err: unknown) => fail(res, 500, errorMessage(err))),
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    handleUpgrade(req, socket, head, {
      ...deps,
      authenticate: (r) => authenticate(r, deps.client),
      authorize: (caller, node, verb) =>
        authorize(deps.client, caller, node, { subresource: 'proxy', verb }),
    }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  deps: KubeletApiDeps,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://kubelet');
  const [endpoint, ...rest] = url.pathname.split('/').filter(Boolean);
  if (endpoint === 'healthz') return void res.end('ok');
  const caller = await authenticate(req, deps.client);
  if (!caller)
    return fail(res, 401, 'Unauthorized: a client certificate or bearer token is required');
  const refused = endpoint ? notServedPlain(endpoint) : undefined;
  if (refused) return fail(res, ...refused);
  const route = routeOf(endpoint, rest);
  if (!route) return fail(res, 404, `kedge: ${url.pathname} is not served`);
  const requested = requestedNode(req);
  if ('refused' in requested) return fail(res, 403, `Forbidden: ${requested.refused}`);
  if (route === 'resourceMetrics') return resourceMetrics(res, requested.node, { ...deps, caller });
  await containerLogs(res, rest.map(decodeURIComponent) as [string, string, string], {
    ...deps,
    caller,
    url,
    requestedNode: requested.node,
  });
}

/** Why an endpoint is not served as a plain request, if it is not. */
function notServedPlain(endpoint: string): [status: number, message: string] | undefined {
  if (NOT_SUPPORTED.has(endpoint))
    return [501, `kedge: ${endpoint} is not supported yet on edge devices`];
  if (endpoint === 'methods') return [410, METHODS_MOVED];
  if (STREAMING.has(endpoint))
    return [
      400,
      `kedge: ${endpoint} needs an upgrade to SPDY/3.1, as the API server makes for kubectl ${endpoint === 'portForward' ? 'port-forward' : endpoint}`,
    ];
  return undefined;
}

/** The served endpoint a path is: `/containerLogs/{ns}/{pod}/{container}` or `/metrics/resource`. */
function routeOf(
  endpoint: string | undefined,
  rest: string[],
): 'containerLogs' | 'resourceMetrics' | undefined {
  if (endpoint === 'containerLogs' && rest.length === 3) return 'containerLogs';
  if (endpoint === 'metrics' && rest.length === 1 && rest[0] === 'resource')
    return 'resourceMetrics';
  return undefined;
}

/** The node a request names, or why it cannot be trusted to name one. */
type RequestedNode = { node: string | undefined } | { refused: string };

/** `/api/v1/nodes/{name}/proxy…`, where name may carry `scheme:` and `:port`. */
const NODE_PROXY_PATH = /^\/api\/v1\/nodes\/([^/]+)\/proxy(?:\/|$)/;

/**
 * Every kedge Node shares this endpoint, so the request itself must say which node it was sent
 * to (docs/adr/0011-service-api.md). The API server's node proxy (`nodes/{name}/proxy`)
 * always sets `X-Forwarded-Uri` to the path it was called on, overwriting any client value, and
 * always adds `X-Forwarded-For`. Its upgrade path adds only `X-Forwarded-For` and passes client
 * headers through, so it is refused here. `pods/{name}/log` requests carry neither header: they
 * name no node, and the pod's own node serves them. Direct callers are checked by
 * SubjectAccessReview against the node that serves the pod.
 */
export function requestedNode(req: IncomingMessage): RequestedNode {
  const connection = String(req.headers.connection ?? '').toLowerCase();
  if (req.headers.upgrade !== undefined || connection.includes('upgrade'))
    return { refused: 'the kubelet API is not served over an upgraded connection' };
  const forwardedUri = req.headers['x-forwarded-uri'];
  if (typeof forwardedUri === 'string') {
    const name = NODE_PROXY_PATH.exec(forwardedUri)?.[1];
    if (!name) return { refused: `a forwarded request must come through nodes/{name}/proxy` };
    const parts = name.split(':');
    return { node: parts.length === 3 ? parts[1] : parts[0] };
  }
  if (req.headers['x-forwarded-for'] !== undefined)
    return { refused: 'a forwarded request that does not name its node is not served' };
  return { node: undefined };
}

/**
 * `GET /containerLogs/{namespace}/{pod}/{container}`, streamed from the device: only for a pod
 * bound to the node the request was sent to, and only the module that pod's container is.
 */
async function containerLogs(
  res: ServerResponse,
  [namespace, pod, container]: [string, string, string],
  d: KubeletApiDeps & { caller: Caller; url: URL; requestedNode: string | undefined },
): Promise<void> {
  const found = d.pod(namespace, pod);
  const nodeName = found?.nodeName;
  const target = nodeName ? deviceForNode(nodeName) : undefined;
  if (!found || !nodeName || !target)
    return fail(res, 404, `kedge: pod ${namespace}/${pod} is not on a kedge node`);
  if (d.requestedNode !== undefined && d.requestedNode !== nodeName)
    return fail(
      res,
      403,
      `Forbidden: pod ${namespace}/${pod} is not on node ${d.requestedNode}; its logs are served only through its own node`,
    );
  if (!found.containers.includes(container))
    return fail(res, 404, `kedge: container ${container} is not in pod ${namespace}/${pod}`);
  if (d.moduleOwner(nodeName, container) !== `${namespace}/${pod}`)
    return fail(
      res,
      403,
      `Forbidden: module ${container} on node ${nodeName} does not belong to pod ${namespace}/${pod}`,
    );
  // The kubelet maps every endpoint but /logs, /stats and /metrics to nodes/proxy.
  if (!(await authorize(d.client, d.caller, nodeName, { subresource: 'proxy' }))) {
    return fail(res, 403, `Forbidden: ${d.caller.user} may not read logs on node ${nodeName}`);
  }
  const logs = d.streamLogs(target.namespace, target.device, {
    module: container,
    ...logOptions(d.url),
  });
  streamLogs(res, d.url, logs, d.log);
}

/** Where to read a node's resource metrics, since a direct caller cannot name the node. */
const NAME_THE_NODE =
  'kedge: every kedge node shares this kubelet endpoint, so resource metrics are served only ' +
  'through the API server: GET /api/v1/nodes/{node}/proxy/metrics/resource';

/** `GET /metrics/resource` of the node the request was sent to, from its device's latest readings. */
async function resourceMetrics(
  res: ServerResponse,
  nodeName: string | undefined,
  d: KubeletApiDeps & { caller: Caller },
): Promise<void> {
  if (nodeName === undefined) return fail(res, 400, NAME_THE_NODE);
  if (!deviceForNode(nodeName)) return fail(res, 404, `kedge: ${nodeName} is not a kedge node`);
  // The kubelet maps /metrics to nodes/metrics.
  if (!(await authorize(d.client, d.caller, nodeName, { subresource: 'metrics' })))
    return fail(res, 403, `Forbidden: ${d.caller.user} may not read metrics of node ${nodeName}`);
  const usage = d.resourceUsage(nodeName);
  if (!usage)
    return fail(
      res,
      503,
      `kedge: node ${nodeName} has no recent resource readings (its device is disconnected, or has not sent any yet)`,
    );
  res.writeHead(200, { 'content-type': PROMETHEUS_TEXT });
  res.end(renderResourceMetrics(usage));
}

function logOptions(url: URL): Omit<LogRequest, 'id' | 'module'> {
  const q = url.searchParams;
  const num = (k: string): number | undefined => (q.has(k) ? Number(q.get(k)) : undefined);
  const bool = (k: string): boolean => q.get(k) === 'true' || q.get(k) === '1';
  return {
    follow: bool('follow'),
    timestamps: bool('timestamps'),
    ...(q.has('tailLines') ? { tailLines: num('tailLines') } : {}),
    ...(q.has('sinceSeconds') ? { sinceSeconds: num('sinceSeconds') } : {}),
    ...(q.has('sinceTime') ? { sinceTime: q.get('sinceTime')! } : {}),
    ...(q.has('limitBytes') ? { limitBytes: num('limitBytes') } : {}),
  };
}

function streamLogs(res: ServerResponse, url: URL, logs: Readable, log: Logger): void {
  res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
  res.on('close', () => logs.destroy());
  logs.on('error', (err) => {
    log.warn({ path: url.pathname, reason: err.message }, 'log stream failed');
    res.end(`\nkedge: ${err.message}\n`);
  });
  logs.pipe(res);
}

/** The verified client certificate's CN and O, if the caller presented one. */
function certificateCaller(socket: TLSSocket): Caller | undefined {
  // A resumed TLS session can be `authorized` without a peer certificate to read.
  const subject = socket.authorized ? socket.getPeerCertificate()?.subject : undefined;
  if (!subject?.CN) return undefined;
  const o = subject.O;
  return { user: String(subject.CN), groups: Array.isArray(o) ? o : o ? [o] : [] };
}

async function authenticate(req: IncomingMessage, client: KubeClient): Promise<Caller | undefined> {
  const socket = req.socket as TLSSocket;
  const fromCertificate = certificateCaller(socket);
  if (fromCertificate) return fromCertificate;
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (!token) return undefined;
  const review = await client.request<{
    status?: { authenticated?: boolean; user?: { username: string; groups?: string[] } };
  }>({
    method: 'POST',
    path: '/apis/authentication.k8s.io/v1/tokenreviews',
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
  });
  const user = review.status?.authenticated ? review.status.user : undefined;
  return user ? { user: user.username, groups: user.groups ?? [] } : undefined;
}

async function authorize(
  client: KubeClient,
  caller: Caller,
  node: string,
  access: { subresource: string; verb?: string },
): Promise<boolean> {
  const review = await client.request<{ status?: { allowed?: boolean } }>({
    method: 'POST',
    path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: caller.user,
        groups: caller.groups,
        resourceAttributes: {
          verb: access.verb ?? 'get',
          resource: 'nodes',
          subresource: access.subresource,
          name: node,
        },
      },
    },
  });
  return review.status?.allowed === true;
}

/** Kubernetes reasons for the statuses this API answers with. */
const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  410: 'Gone',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'ServiceUnavailable',
};

/** A Kubernetes `Status` reply: kubectl shows its message whatever the status code. */
function fail(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason: REASONS[status] ?? 'Unknown',
      code: status,
    }),
  );
}
