/**
 * The kubelet API's upgraded requests: `exec`, `attach` and `portForward`, as the API server
 * proxies `pods/exec`, `pods/attach` and `pods/portforward` (and `kubectl cp`, which is exec of
 * `tar`). Every other upgraded request is refused: on the node proxy's upgrade path a request
 * cannot show which node it was sent to (docs/adr/0027-exec-and-port-forward.md).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { errorMessage } from '../common/errors.js';
import { StreamEndpoint, type StreamOpen } from '../common/cloudlink/streams.js';
import type { Caller, KubeletApiDeps } from './kubelet-api.js';
import { deviceForNode } from './naming.js';
import {
  PORT_FORWARD_PROTOCOL,
  REMOTE_COMMAND_PROTOCOL,
  servePortForward,
  serveRemoteCommand,
  type RemoteCommandOptions,
} from './remote-command.js';
import { SpdySession } from './spdy/session.js';

const SPDY_UPGRADE = 'spdy/3.1';

/** What the upgrade handler needs beyond the kubelet API's own dependencies. */
export interface UpgradeDeps extends KubeletApiDeps {
  authenticate(req: IncomingMessage): Promise<Caller | undefined>;
  /** Whether the caller may use `nodes/proxy` with `verb` on the node. */
  authorize(caller: Caller, node: string, verb: string): Promise<boolean>;
}

/** A refusal: an HTTP status and the message kubectl shows. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The pod, node and module a streaming request is for. */
interface Target {
  namespace: string;
  pod: string;
  nodeName: string;
  device: { namespace: string; device: string };
  module: string;
}

/** Serves an upgraded request on `socket`; never throws. */
export function handleUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  deps: UpgradeDeps,
): void {
  socket.on('error', () => socket.destroy());
  upgrade(req, socket, head, deps).catch((err: unknown) => {
    const refusal = err instanceof Refusal ? err : new Refusal(500, `kedge: ${errorMessage(err)}`);
    if (!(err instanceof Refusal))
      deps.log.warn({ path: req.url, reason: errorMessage(err) }, 'streaming request failed');
    refuse(socket, refusal.status, refusal.message);
  });
}

async function upgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  deps: UpgradeDeps,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://kubelet');
  const [endpoint, ...rest] = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const kind = streamingKind(endpoint, rest.length);
  if (!kind)
    throw new Refusal(
      403,
      'Forbidden: the kubelet API serves upgraded connections only for exec, attach and portForward',
    );
  const { target, caller } = await admit(req, deps, { endpoint: endpoint!, rest, url });
  const protocol = negotiate(req, kind, endpoint!);
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
      `X-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
  );
  const session = new SpdySession(socket);
  session.setMaxListeners(0);
  const log = deps.log.child({ pod: `${target.namespace}/${target.pod}`, module: target.module });
  log.info({ kind, path: url.pathname, user: caller.user }, 'streaming session started');
  session.once('close', (reason) => log.info({ kind, reason }, 'streaming session ended'));
  const openOn = (open: Omit<StreamOpen, 'module'>): StreamEndpoint =>
    deps.openSession(target.device.namespace, target.device.device, {
      ...open,
      module: target.module,
    });
  if (kind === 'portforward') servePortForward(session, (port) => openPort(openOn, port));
  else {
    const command = kind === 'exec' ? url.searchParams.getAll('command') : undefined;
    serveRemoteCommand(
      session,
      remoteCommandOptions(url),
      (open) => openFailSafe(openOn, open),
      command,
    );
  }
  session.start(head);
}

/** Authenticates the caller, finds the pod's module and authorizes nodes/proxy on its node. */
async function admit(
  req: IncomingMessage,
  deps: UpgradeDeps,
  r: { endpoint: string; rest: string[]; url: URL },
): Promise<{ target: Target; caller: Caller }> {
  const caller = await deps.authenticate(req);
  if (!caller)
    throw new Refusal(401, 'Unauthorized: a client certificate or bearer token is required');
  if (String(req.headers.upgrade ?? '').toLowerCase() !== SPDY_UPGRADE)
    throw new Refusal(
      400,
      `kedge: ${r.endpoint} is served over SPDY/3.1 only (the API server's protocol to kubelets)`,
    );
  if (r.endpoint === 'exec' && r.url.searchParams.getAll('command').length === 0)
    throw new Refusal(400, 'kedge: exec needs a command');
  const target = findTarget(deps, r.rest as [string, string, string?], r.url);
  const verb = req.method === 'GET' || req.method === 'HEAD' ? 'get' : 'create';
  // The kubelet maps exec, attach and portForward to nodes/proxy.
  if (!(await deps.authorize(caller, target.nodeName, verb)))
    throw new Refusal(
      403,
      `Forbidden: ${caller.user} may not ${r.endpoint} on node ${target.nodeName}`,
    );
  return { target, caller };
}

/** The stream protocol both sides speak, or a refusal naming the one kedge serves. */
function negotiate(req: IncomingMessage, kind: string, endpoint: string): string {
  const protocol = kind === 'portforward' ? PORT_FORWARD_PROTOCOL : REMOTE_COMMAND_PROTOCOL;
  const offered = String(req.headers['x-stream-protocol-version'] ?? '')
    .split(',')
    .map((p) => p.trim());
  if (!offered.includes(protocol))
    throw new Refusal(
      403,
      `kedge: ${endpoint} needs stream protocol ${protocol}; the client offered ${offered.filter(Boolean).join(', ') || 'none'}`,
    );
  return protocol;
}

function openPort(
  openOn: (open: Omit<StreamOpen, 'module'>) => StreamEndpoint,
  port: number,
): StreamEndpoint | string {
  try {
    return openOn({ kind: 'portforward', port });
  } catch (err) {
    return `kedge: ${errorMessage(err)}`;
  }
}

/** Opens the device session, or an already-ended endpoint that carries why it could not. */
function openFailSafe(
  openOn: (open: Omit<StreamOpen, 'module'>) => StreamEndpoint,
  open: Omit<StreamOpen, 'module'>,
): StreamEndpoint {
  try {
    return openOn(open);
  } catch (err) {
    const failed = new StreamEndpoint('unopened', () => undefined);
    setImmediate(() => failed.end({ error: errorMessage(err) }, false));
    return failed;
  }
}

function streamingKind(
  endpoint: string | undefined,
  parts: number,
): 'exec' | 'attach' | 'portforward' | undefined {
  if (endpoint === 'exec' && (parts === 3 || parts === 4)) return 'exec';
  if (endpoint === 'attach' && (parts === 3 || parts === 4)) return 'attach';
  if (endpoint === 'portForward' && (parts === 2 || parts === 3)) return 'portforward';
  return undefined;
}

/**
 * `/{endpoint}/{ns}/{pod}/{container}` (exec, attach; the kubelet also takes a pod uid before the
 * container) or `/portForward/{ns}/{pod}[/{uid}]`: the pod must be on a kedge node and the
 * container must be the module it runs as.
 */
function findTarget(
  deps: KubeletApiDeps,
  rest: [string, string, string?, string?],
  url: URL,
): Target {
  const [namespace, pod] = rest;
  const found = deps.pod(namespace, pod);
  const nodeName = found?.nodeName;
  const device = nodeName ? deviceForNode(nodeName) : undefined;
  if (!found || !nodeName || !device)
    throw new Refusal(404, `kedge: pod ${namespace}/${pod} is not on a kedge node`);
  const isPortForward = url.pathname.startsWith('/portForward/');
  const container = isPortForward
    ? portForwardContainer(found, url)
    : (rest.length === 4 ? rest[3] : rest[2])!;
  if (!found.containers.includes(container))
    throw new Refusal(404, `kedge: container ${container} is not in pod ${namespace}/${pod}`);
  if (deps.moduleOwner(nodeName, container) !== `${namespace}/${pod}`)
    throw new Refusal(
      403,
      `Forbidden: module ${container} on node ${nodeName} does not belong to pod ${namespace}/${pod}`,
    );
  return { namespace, pod, nodeName, device, module: container };
}

/**
 * A kedge pod's containers are separate modules, each with its own address, so a port is
 * forwarded to one of them: the one that declares it, else the pod's only container.
 */
function portForwardContainer(
  pod: { containers: string[]; ports?: Record<string, number[]> },
  url: URL,
): string {
  const ports = url.searchParams.getAll('port').map(Number);
  const declaring = pod.containers.filter((c) => ports.some((p) => pod.ports?.[c]?.includes(p)));
  if (declaring.length === 1) return declaring[0]!;
  if (pod.containers.length === 1) return pod.containers[0]!;
  throw new Refusal(
    400,
    `kedge: this pod's containers are separate modules on the device; forward a port that exactly one of them declares (${pod.containers.join(', ')})`,
  );
}

/** The kubelet's query flags, as the API server sets them: `input`, `output`, `error`, `tty`. */
function remoteCommandOptions(url: URL): RemoteCommandOptions {
  const flag = (name: string): boolean => ['1', 'true'].includes(url.searchParams.get(name) ?? '');
  return { stdin: flag('input'), stdout: flag('output'), stderr: flag('error'), tty: flag('tty') };
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  500: 'InternalError',
};

/** Answers a refused upgrade with a Kubernetes Status, as a plain HTTP response. */
function refuse(socket: Duplex, status: number, message: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: REASONS[status] ?? 'Unknown',
    code: status,
  });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
