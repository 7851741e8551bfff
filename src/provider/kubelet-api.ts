import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { LogRequest, MethodResponse } from '../common/cloudlink/protocol.js';
import { ErrorCode, isKedgeError } from '../common/errors.js';
import type { Readable } from 'node:stream';
import type { KubeClient } from '../controller/kube/client.js';
import { deviceForNode, nodeNameFor } from './naming.js';

/** An authenticated caller of the kubelet API. */
export interface Caller {
  user: string;
  groups: string[];
}

/** What the kubelet API needs from the rest of the controller. */
export interface KubeletApiDeps {
  client: KubeClient;
  log: Logger;
  /** The node a pod is bound to, from the informer cache. */
  podNode(namespace: string, pod: string): string | undefined;
  /** Streams a module log from its device. */
  streamLogs(namespace: string, device: string, request: Omit<LogRequest, 'id'>): Readable;
  /** Calls a direct method on a module of a device. */
  invokeMethod(namespace: string, device: string, call: MethodCall): Promise<MethodResponse>;
}

/** A direct-method call as the kubelet API receives it. */
export interface MethodCall {
  module: string;
  method: string;
  payload: unknown;
  timeoutSecs: number;
}

/** IoT Hub's default direct-method response timeout. */
export const DEFAULT_METHOD_TIMEOUT_SECS = 30;
/** Largest method payload accepted, as IoT Hub's 128 KiB. */
const MAX_METHOD_PAYLOAD_BYTES = 128 * 1024;

/** Options for {@link startKubeletApi}. */
export interface KubeletApiOptions {
  port: number;
  host?: string;
  tls: { certPem: string; keyPem: string };
  /** CA bundle that signs the API server's kubelet client certificate. */
  clientCaPem: string;
}

const NOT_SUPPORTED = new Set(['exec', 'attach', 'portForward', 'run']);

/**
 * The kubelet HTTPS API the API server proxies to for every kedge node. It authenticates the
 * caller (client certificate, else bearer token by TokenReview), authorizes it with a
 * SubjectAccessReview, and streams module logs from the device over its existing link.
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
  if (endpoint && NOT_SUPPORTED.has(endpoint))
    return fail(res, 501, `kedge: ${endpoint} is not supported yet on edge devices`);
  if (endpoint === 'methods' && rest.length === 4)
    return invoke(req, res, rest.map(decodeURIComponent) as Quad, { ...deps, caller, url });
  if (endpoint !== 'containerLogs' || rest.length !== 3)
    return fail(res, 404, `kedge: ${url.pathname} is not served`);
  await containerLogs(res, rest.map(decodeURIComponent) as [string, string, string], {
    ...deps,
    caller,
    url,
  });
}

/** `GET /containerLogs/{namespace}/{pod}/{container}`, streamed from the device. */
async function containerLogs(
  res: ServerResponse,
  [namespace, pod, container]: [string, string, string],
  d: KubeletApiDeps & { caller: Caller; url: URL },
): Promise<void> {
  const nodeName = d.podNode(namespace, pod);
  const target = nodeName ? deviceForNode(nodeName) : undefined;
  if (!nodeName || !target) return fail(res, 404, `pod ${namespace}/${pod} is not on a kedge node`);
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

type Quad = [string, string, string, string];

/** `POST /methods/{namespace}/{device}/{module}/{method}?timeoutSecs=N` with a JSON payload. */
async function invoke(
  req: IncomingMessage,
  res: ServerResponse,
  [namespace, device, module, method]: Quad,
  d: KubeletApiDeps & { caller: Caller; url: URL },
): Promise<void> {
  if (req.method !== 'POST') return fail(res, 405, 'kedge: direct methods take POST');
  if (
    !(await authorize(d.client, d.caller, nodeNameFor(namespace, device), {
      subresource: 'proxy',
      verb: 'create',
    }))
  ) {
    return fail(
      res,
      403,
      `Forbidden: ${d.caller.user} may not invoke methods on ${namespace}/${device}`,
    );
  }
  const body = await readBody(req, MAX_METHOD_PAYLOAD_BYTES);
  if (body === undefined)
    return fail(res, 413, `kedge: method payload over ${MAX_METHOD_PAYLOAD_BYTES} bytes`);
  let payload: unknown;
  try {
    payload = body.length ? JSON.parse(body) : null;
  } catch {
    return fail(res, 400, 'kedge: method payload must be JSON');
  }
  const timeoutSecs = Number(d.url.searchParams.get('timeoutSecs') ?? DEFAULT_METHOD_TIMEOUT_SECS);
  try {
    const result = await d.invokeMethod(namespace, device, {
      module,
      method,
      payload,
      timeoutSecs,
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(result));
  } catch (err) {
    const status = isKedgeError(err, ErrorCode.Timeout) ? 504 : 503;
    fail(res, status, `kedge: ${errorMessage(err)}`);
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
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

async function authenticate(req: IncomingMessage, client: KubeClient): Promise<Caller | undefined> {
  const socket = req.socket as TLSSocket;
  if (socket.authorized) {
    const cert = socket.getPeerCertificate();
    const o = cert.subject.O;
    return { user: String(cert.subject.CN), groups: Array.isArray(o) ? o : o ? [o] : [] };
  }
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

function fail(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(`${message}\n`);
}
