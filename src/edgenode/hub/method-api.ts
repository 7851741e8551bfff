/**
 * The direct-method API that `ModuleClient.invokeMethod(deviceId, moduleId, params)` calls: HTTPS
 * `POST /twins/{d}[/modules/{m}]/methods` on the gateway host, as edgeHub serves it on 443.
 * - The caller is a module of this device: `x-ms-edge-moduleId: {d}/{m}` names it and the
 *   `Authorization` header carries its SAS token, checked like an MQTT CONNECT.
 * - The body is `{methodName, payload, responseTimeoutInSeconds, connectTimeoutInSeconds}`; the
 *   answer is `200 {status, payload}`, `404` when the target is not connected or not listening for
 *   methods, `504` when it does not answer in time.
 *
 * WebSocket upgrades on the same port are MQTT over WebSockets (`mqtt-ws.ts`).
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { isKedgeError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { IdentityRegistry } from './identities.js';
import { listenOn } from './listen.js';
import { SDK_PORTS } from './options.js';
import type { HubMetrics } from './metrics.js';
import type { MethodResult } from './methods.js';
import type { HubLimits } from './options.js';
import { refuseUpgrade } from './mqtt-ws.js';
import { PreAuthGuard } from './preauth-guard.js';
import type { Target } from './upstream/upstream.js';
import { readBodyUpTo, replyJson } from './http-json.js';

/** Method payload limit, as edgeHub (128 KB) plus room for the envelope. */
export const MAX_METHOD_BODY_BYTES = 128 * 1024 + 1024;
/** Response timeout range edgeHub accepts (seconds). */
const MIN_TIMEOUT_SECS = 5;
const MAX_TIMEOUT_SECS = 300;
/** Default response timeout (seconds), as IoT Hub. */
const DEFAULT_TIMEOUT_SECS = 30;
/** Slow or idle callers cannot hold a socket for longer than this. */
const HEADERS_TIMEOUT_MS = 10_000;
/** Longest method name accepted. */
const MAX_METHOD_NAME = 128;
const MS_PER_SEC = 1000;
/** Characters that would change the meaning of the `$iothub/methods/POST/{name}/` topic. */
const TOPIC_SPECIAL = /[/#+?]/;
const METHODS_PATH = /^\/twins\/([^/]+)(?:\/modules\/([^/]+))?\/methods\/?$/;

/** What the method API needs from the hub. */
export interface MethodApiDeps {
  deviceId: string;
  identities: IdentityRegistry;
  metrics: HubMetrics;
  log: Logger;
  /** The TLS handshake deadline and the per-source cap of not-yet-secured connections. */
  limits: Pick<HubLimits, 'connectTimeoutMs' | 'maxPendingPerSource'>;
  /** Calls the method; undefined when the target is not connected or not listening. */
  call: (
    target: Target,
    methodName: string,
    payload: unknown,
    timeoutMs: number,
  ) => Promise<MethodResult> | undefined;
  /**
   * Takes WebSocket upgrade requests (MQTT over WebSockets); undefined when that is turned off,
   * and upgrades are then answered 404.
   */
  upgrade: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
}

interface MethodRequest {
  methodName: string;
  payload: unknown;
  timeoutMs: number;
}

/** A reply with a status, so handlers can `throw` a refusal. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function validMethodName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name !== '' &&
    name.length <= MAX_METHOD_NAME &&
    !TOPIC_SPECIAL.test(name)
  );
}

/** Validates the JSON body the SDK sends. */
export function parseMethodRequest(text: string): MethodRequest {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Refusal(400, 'body is not JSON');
  }
  if (typeof body !== 'object' || body === null) throw new Refusal(400, 'body is not an object');
  const { methodName } = body;
  if (!validMethodName(methodName))
    throw new Refusal(400, `methodName must be 1 to ${MAX_METHOD_NAME} characters without / # + ?`);
  const timeout = body.responseTimeoutInSeconds ?? DEFAULT_TIMEOUT_SECS;
  if (typeof timeout !== 'number' || timeout < MIN_TIMEOUT_SECS || timeout > MAX_TIMEOUT_SECS)
    throw new Refusal(
      400,
      `responseTimeoutInSeconds must be between ${MIN_TIMEOUT_SECS} and ${MAX_TIMEOUT_SECS}`,
    );
  return { methodName, payload: body.payload ?? null, timeoutMs: timeout * MS_PER_SEC };
}

/** The HTTPS server for module-to-module direct methods. */
export class MethodApi {
  readonly #d: MethodApiDeps;
  readonly #guard: PreAuthGuard;
  #servers: net.Server[] = [];
  /** Upgraded connections: the https server no longer tracks them, so close() ends them here. */
  readonly #upgraded = new Set<Duplex>();

  constructor(deps: MethodApiDeps) {
    this.#d = deps;
    this.#guard = new PreAuthGuard({
      deadlineMs: deps.limits.connectTimeoutMs,
      maxPerSource: deps.limits.maxPendingPerSource,
      onRefused: (reason, source) => {
        deps.metrics.refused.inc({ listener: 'methods', reason });
        deps.log.debug({ source, reason }, 'method API connection closed before TLS finished');
      },
    });
  }

  /** Listens on every address; returns the bound port. */
  async listen(options: {
    port: number;
    hosts: string[];
    /** Addresses that also get the API on 443 whatever `port` is (the module network). */
    sdkHosts: (boundPort: number) => string[];
    cert: string;
    key: string;
  }): Promise<number> {
    const create = (): net.Server => {
      const server = https.createServer(
        { cert: options.cert, key: options.key, minVersion: 'TLSv1.2' },
        (req, res) => void this.#serve(req, res),
      );
      server.headersTimeout = HEADERS_TIMEOUT_MS;
      server.on('connection', (s: net.Socket) => this.#guard.admit(s));
      server.on('secureConnection', (s: net.Socket) => this.#guard.passed(s));
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
        this.#upgrade(req, socket, head),
      );
      // Node only reports a failed handshake; the socket stays open unless closed.
      server.on('tlsClientError', (_err, socket) => {
        this.#d.metrics.refused.inc({ listener: 'methods', reason: 'tls_error' });
        socket.destroy();
      });
      return server;
    };
    const bound = await listenOn(create, options.port, options.hosts, 'hub.methodsPort');
    this.#servers = bound.servers;
    const sdkHosts = options.sdkHosts(bound.port);
    if (sdkHosts.length > 0) {
      const sdk = await listenOn(create, SDK_PORTS.https, sdkHosts, 'module network method API');
      this.#servers.push(...sdk.servers);
    }
    return bound.port;
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // The http server's error handling ends with the upgrade; a reset must not become an
    // uncaught 'error'.
    socket.on('error', () => undefined);
    this.#upgraded.add(socket);
    socket.once('close', () => this.#upgraded.delete(socket));
    if (this.#d.upgrade) this.#d.upgrade(req, socket, head);
    else
      refuseUpgrade(socket, {
        status: 404,
        message: 'MQTT over WebSockets is turned off on this hub (hub.mqttWebSockets)',
      });
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let status: number;
    try {
      const { status: s, body } = await this.#handle(req);
      status = s;
      replyJson(res, s, body);
    } catch (err) {
      status = err instanceof Refusal ? err.status : 500;
      const message = err instanceof Refusal ? err.message : 'internal error';
      if (!(err instanceof Refusal)) this.#d.log.warn({ err }, 'method API request failed');
      if (!res.headersSent) replyJson(res, status, { message });
    }
    this.#d.metrics.methodApiRequests.inc({ code: String(status) });
  }

  async #handle(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const url = new URL(req.url ?? '/', 'https://hub');
    const match = METHODS_PATH.exec(url.pathname);
    if (!match) throw new Refusal(404, 'not found');
    if (req.method !== 'POST') throw new Refusal(405, 'only POST is allowed');
    const caller = this.#authenticate(req);
    const target = this.#target(decodeURIComponent(match[1]!), match[2]);
    const text = await readBodyUpTo(req, MAX_METHOD_BODY_BYTES);
    if (text === undefined)
      throw new Refusal(413, `request body over ${MAX_METHOD_BODY_BYTES} bytes`);
    const call = parseMethodRequest(text);
    this.#d.log.debug({ caller, target, method: call.methodName }, 'module invokes a method');
    const pending = this.#d.call(target, call.methodName, call.payload, call.timeoutMs);
    if (!pending) throw new Refusal(404, 'target is not connected or not listening for methods');
    try {
      return { status: 200, body: await pending };
    } catch (err) {
      if (isKedgeError(err)) throw new Refusal(504, err.message);
      throw err;
    }
  }

  /** The calling module, from its SAS token; only modules of this device may call. */
  #authenticate(req: IncomingMessage): string {
    const token = req.headers.authorization;
    const caller = req.headers['x-ms-edge-moduleid'];
    if (typeof token !== 'string' || typeof caller !== 'string')
      throw new Refusal(401, 'Authorization and x-ms-edge-moduleId headers are required');
    const [deviceId, moduleId, ...rest] = caller.split('/');
    if (deviceId !== this.#d.deviceId || !moduleId || rest.length > 0)
      throw new Refusal(403, 'only modules of this device may invoke methods');
    try {
      this.#d.identities.authenticateToken(deviceId, moduleId, token);
    } catch (err) {
      this.#d.log.warn({ caller, err: (err as Error).message }, 'method API refused a caller');
      throw new Refusal(401, 'invalid credentials');
    }
    return caller;
  }

  /** Modules of this device and leaf devices (by device id) are valid targets. */
  #target(deviceId: string, moduleRaw: string | undefined): Target {
    const moduleId = moduleRaw === undefined ? undefined : decodeURIComponent(moduleRaw);
    if (moduleId !== undefined && deviceId !== this.#d.deviceId)
      throw new Refusal(404, `module ${deviceId}/${moduleId} is not on this device`);
    return moduleId === undefined ? { deviceId } : { deviceId, moduleId };
  }

  /** Serves a new certificate to new connections; open ones keep theirs. */
  setSecureContext(pair: { cert: string; key: string }): void {
    for (const s of this.#servers)
      (s as https.Server).setSecureContext({ ...pair, minVersion: 'TLSv1.2' });
  }

  /** Stops listening and drops open connections, MQTT over WebSockets included. */
  async close(): Promise<void> {
    for (const socket of this.#upgraded) socket.destroy();
    await Promise.all(
      this.#servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            (s as https.Server).closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
    this.#servers = [];
  }
}
