/**
 * The dashboard's local web server. It acts as the user: every read goes to the API server with
 * the user's kubeconfig, so RBAC decides what the page shows and the dashboard adds no
 * credentials of its own. It listens on loopback only, and a page must present the random token
 * of the URL printed at start (kept in a cookie), so another local user or a web site cannot
 * use the server to act as this user.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { errorMessage } from '../common/errors.js';
import type { EdgeDeployment, EdgeDevice } from '../crds/index.js';
import { Resources, type KubeClient, type KubeObject } from '../controller/kube/client.js';
import { SERVICE_API_GROUP, SERVICE_API_VERSION } from '../controller/service-api/server.js';
import { matchesSelector } from '../controller/selector.js';
import { nodeNameFor } from '../provider/naming.js';
import { Events, type Failure, type FleetQuery, type Phase } from './protocol.js';
import { SharedList } from './shared-list.js';
import { openSse, type SseStream } from './sse.js';
import { followTelemetry } from './telemetry-feed.js';
import { deploymentView, deviceView, fleetView, type PodLike } from './views.js';
import { readFailure, WatchedList } from './watch.js';

/** A deployment's telemetry chart follows this many of its devices at most. */
export const MAX_CHART_DEVICES = 10;
/** A log tail starts with this many lines. */
const LOG_TAIL_LINES = 200;
/** Log lines are batched this long, so a chatty module sends a few events a second, not hundreds. */
const LOG_BATCH_MS = 250;
const COOKIE = 'kedge_dashboard';
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Options for {@link startDashboard}. */
export interface DashboardOptions {
  /** The user's client: every read is made with it. */
  client: KubeClient;
  /** Only this namespace; all namespaces when unset. */
  namespace?: string;
  /** Port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** Where the built page (index.html, app.js, app.css) is. */
  uiDir: string;
}

/** A running dashboard. */
export interface Dashboard {
  /** The URL to open, with the access token. */
  url: string;
  close(): Promise<void>;
}

type Device = EdgeDevice & KubeObject;
type Deployment = EdgeDeployment & KubeObject;

interface Context {
  options: DashboardOptions;
  token: string;
  devices: SharedList<Device>;
  deployments: SharedList<Deployment>;
}

/** Starts the server on 127.0.0.1. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const ctx: Context = {
    options,
    token: randomBytes(24).toString('base64url'),
    devices: new SharedList<Device>(options.client, Resources.edgeDevices(options.namespace)),
    deployments: new SharedList<Deployment>(
      options.client,
      Resources.edgeDeployments(options.namespace),
    ),
  };
  const server = createServer((req, res) => {
    handle(req, res, ctx).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { status: 500, message: errorMessage(err) });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/?token=${ctx.token}`,
    close: () => close(server, ctx),
  };
}

async function close(server: Server, ctx: Context): Promise<void> {
  ctx.devices.close();
  ctx.deployments.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

type Handler = (req: IncomingMessage, res: ServerResponse, ctx: Context, url: URL) => unknown;

const API: Record<string, Handler> = {
  '/api/fleet': serveFleet,
  '/api/device': serveDevice,
  '/api/deployments': serveDeployments,
  '/api/telemetry': serveTelemetry,
  '/api/logs': serveLogs,
  '/api/twin': serveTwin,
};

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  if (!loopbackHost(req.headers.host)) return text(res, 421, 'kedge dashboard: wrong host\n');
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const offered = url.searchParams.get('token');
  if (url.pathname === '/' && offered !== null && sameToken(offered, ctx.token)) {
    res.writeHead(303, {
      location: '/',
      'set-cookie': `${COOKIE}=${ctx.token}; HttpOnly; SameSite=Strict; Path=/`,
    });
    return void res.end();
  }
  if (!sameToken(cookie(req, COOKIE) ?? '', ctx.token))
    return text(res, 401, 'kedge dashboard: open the URL that `kedge dashboard` printed\n');
  if (req.method !== 'GET') return text(res, 405, 'kedge dashboard: read only\n');
  const api = API[url.pathname];
  if (api) return void (await api(req, res, ctx, url));
  await serveFile(res, ctx.options.uiDir, url.pathname);
}

/** DNS rebinding guard: a page of another site reaching 127.0.0.1 still sends its own Host. */
function loopbackHost(host: string | undefined): boolean {
  return /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host ?? '');
}

function sameToken(offered: string, token: string): boolean {
  const a = Buffer.from(offered);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

async function serveFile(res: ServerResponse, dir: string, pathname: string): Promise<void> {
  // The page routes with the URL hash, so every other path is the page itself.
  const name = path.basename(pathname);
  const file = CONTENT_TYPES[path.extname(name)] && name ? name : 'index.html';
  const full = path.join(dir, file);
  const found = await stat(full).catch(() => undefined);
  if (!found) return text(res, 404, `kedge dashboard: ${file} is missing from ${dir}\n`);
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'cache-control': 'no-cache',
  });
  createReadStream(full).pipe(res);
}

function serveFleet(_req: IncomingMessage, res: ServerResponse, ctx: Context, url: URL): void {
  const phase = url.searchParams.get('phase') ?? '';
  const query: FleetQuery = {
    search: url.searchParams.get('search') ?? '',
    phase: (['Connected', 'Disconnected', 'Pending'].includes(phase) ? phase : '') as Phase | '',
    groupBy: url.searchParams.get('groupBy') ?? '',
  };
  const sse = openSse(res);
  let last = '';
  const stop = ctx.devices.listen((items, failure) => {
    if (failure) return sse.send(Events.failure, explain(failure, 'edgedevices', ctx));
    const view = JSON.stringify(fleetView(items.values(), query));
    if (view !== last) sse.sendJson(Events.fleet, view);
    last = view;
  });
  void sse.closed.then(stop);
}

function serveDeployments(_req: IncomingMessage, res: ServerResponse, ctx: Context): void {
  const sse = openSse(res);
  const stop = ctx.deployments.listen((items, failure) => {
    if (failure) return sse.send(Events.failure, explain(failure, 'edgedeployments', ctx));
    const views = [...items.values()].map(deploymentView);
    sse.send(
      Events.deployments,
      views.sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
  });
  void sse.closed.then(stop);
}

function serveDevice(_req: IncomingMessage, res: ServerResponse, ctx: Context, url: URL): void {
  const namespace = url.searchParams.get('namespace') ?? '';
  const name = url.searchParams.get('name') ?? '';
  const sse = openSse(res);
  let pods: ReadonlyMap<string, PodLike> = new Map();
  const push = (): void => {
    const device = ctx.devices.items.get(`${namespace}/${name}`);
    if (device) sse.send(Events.device, deviceView(device, pods.values()));
    else
      sse.send(Events.failure, {
        status: 404,
        message: `EdgeDevice ${namespace}/${name} not found`,
      });
  };
  // Pods on the device's Node give each module's log; without the right to list them, the page
  // still shows the modules from the device's status, and the denied list is not retried.
  const podList: WatchedList<PodLike> = new WatchedList<PodLike>(
    ctx.options.client,
    Resources.pods(),
    {
      onChange: (items) => {
        pods = items;
        push();
      },
      onError: (failure) => {
        if (failure.status === 403) podList.stop();
      },
    },
    { fieldSelector: `spec.nodeName=${nodeNameFor(namespace, name)}` },
  );
  const stop = ctx.devices.listen((_items, failure) => {
    if (failure) return sse.send(Events.failure, explain(failure, 'edgedevices', ctx));
    push();
  });
  void sse.closed.then(() => {
    stop();
    podList.stop();
  });
}

function serveTelemetry(_req: IncomingMessage, res: ServerResponse, ctx: Context, url: URL): void {
  const namespace = url.searchParams.get('namespace') ?? '';
  const device = url.searchParams.get('device');
  const deployment = url.searchParams.get('deployment');
  const sse = openSse(res);
  const sink = {
    send: (batch: unknown) => sse.send(Events.telemetry, batch),
    fail: (failure: Failure) => sse.send(Events.failure, failure),
    isClosed: () => sse.isClosed(),
  };
  if (device)
    return void followTelemetry(ctx.options.client, { namespace, devices: [device] }, sink);
  void targetsOf(ctx, namespace, deployment ?? '', sse).then((devices) => {
    if (devices) void followTelemetry(ctx.options.client, { namespace, devices }, sink);
  });
}

/** The devices (at most {@link MAX_CHART_DEVICES}) a deployment targets. */
async function targetsOf(
  ctx: Context,
  namespace: string,
  deployment: string,
  sse: SseStream,
): Promise<string[] | undefined> {
  const { items, failure } = await ctx.deployments.current();
  if (failure) return void sse.send(Events.failure, explain(failure, 'edgedeployments', ctx));
  const devices = await ctx.devices.current();
  if (devices.failure)
    return void sse.send(Events.failure, explain(devices.failure, 'edgedevices', ctx));
  const found = items.get(`${namespace}/${deployment}`);
  if (!found) {
    const message = `EdgeDeployment ${namespace}/${deployment} not found`;
    return void sse.send(Events.failure, { status: 404, message });
  }
  return [...devices.items.values()]
    .filter((d) => d.metadata.namespace === namespace)
    .filter((d) => matchesSelector(found.spec.selector, d.metadata.labels))
    .map((d) => d.metadata.name ?? '')
    .sort()
    .slice(0, MAX_CHART_DEVICES);
}

async function serveLogs(
  _req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  url: URL,
): Promise<void> {
  const namespace = url.searchParams.get('namespace') ?? '';
  const pod = url.searchParams.get('pod') ?? '';
  const sse = openSse(res);
  const stream = await ctx.options.client
    .stream({
      method: 'GET',
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`,
      query: {
        container: url.searchParams.get('container') ?? undefined,
        follow: true,
        tailLines: LOG_TAIL_LINES,
      },
    })
    .catch((err: unknown) => void sse.send(Events.failure, readFailure(err)));
  if (!stream) return;
  let batch: string[] = [];
  const flush = (): void => {
    if (batch.length) sse.send(Events.log, { lines: batch });
    batch = [];
  };
  const timer = setInterval(flush, LOG_BATCH_MS);
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => batch.push(line));
  // Whichever ends first, the page or the log, ends the other and the batching.
  stream.once('close', () => {
    clearInterval(timer);
    flush();
  });
  void sse.closed.then(() => stream.destroy());
}

async function serveTwin(
  _req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  url: URL,
): Promise<void> {
  const namespace = encodeURIComponent(url.searchParams.get('namespace') ?? '');
  const name = encodeURIComponent(url.searchParams.get('name') ?? '');
  try {
    const twin = await ctx.options.client.request<object>({
      method: 'GET',
      path: `/apis/${SERVICE_API_GROUP}/${SERVICE_API_VERSION}/namespaces/${namespace}/edgedevices/${name}/twin`,
      query: { moduleId: url.searchParams.get('module') ?? '' },
    });
    json(res, 200, twin);
  } catch (err) {
    const failure = readFailure(err);
    json(res, failure.status, failure);
  }
}

/** A denial says what the user lacks, and how to narrow the dashboard to what they have. */
function explain(failure: Failure, resource: string, ctx: Context): Failure {
  if (failure.status !== 403) return failure;
  const where = ctx.options.namespace ? `namespace ${ctx.options.namespace}` : 'all namespaces';
  const hint = ctx.options.namespace ? '' : ' (with rights in one namespace, use --namespace)';
  return {
    status: 403,
    message: `Your kubeconfig's user cannot list ${resource}.kedge.io in ${where}${hint}. ${failure.message}`,
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}
