/**
 * The IoT Edge workload API subset the Node SDK uses (api-version 2018-06-28), over a unix socket
 * and over TCP:
 * - `GET /trust-bundle` → `{certificate}` (the device CA, PEM);
 * - `POST /modules/{m}/genid/{g}/sign` `{keyId, algo, data}` → `{digest}`.
 * The (module, generation id) pair must match a registered module: the generation id is only
 * handed to that module, so it works as the capability for TCP callers (see ADR 0002).
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from '../../common/logger.js';
import { signBase64 } from '../../common/iothub/index.js';
import type { IdentityRegistry } from './identities.js';
import { listenOn } from './listen.js';
import { readBodyUpTo, replyJson } from './http-json.js';

/** The oldest api-version the SDK sends; newer ones are accepted too. */
export const WORKLOAD_API_VERSION = '2018-06-28';
/** Bounds request bodies: a sign request is a few hundred bytes. */
const MAX_BODY_BYTES = 64 * 1024;
const SIGN_PATH = /^\/modules\/([^/]+)\/genid\/([^/]+)\/sign$/;

interface SignRequest {
  keyId?: string;
  algo?: string;
  data?: string;
}

/** The workload API server. */
export class WorkloadApi {
  readonly #identities: IdentityRegistry;
  readonly #trustBundle: () => string;
  readonly #log: Logger;
  #servers: http.Server[] = [];

  constructor(identities: IdentityRegistry, trustBundle: () => string, log: Logger) {
    this.#identities = identities;
    this.#trustBundle = trustBundle;
    this.#log = log;
  }

  /** Starts listening on the socket and on every TCP address; returns the bound TCP port (or null). */
  async listen(options: {
    socketPath: string | null;
    port: number | null;
    hosts: string[];
  }): Promise<number | null> {
    const socketPath = options.socketPath;
    if (socketPath) {
      if (existsSync(socketPath)) unlinkSync(socketPath);
      const server = this.#create();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.#servers.push(server);
      chmodSync(socketPath, 0o660);
    }
    if (options.port === null || options.hosts.length === 0) return null;
    const tcp = await listenOn(
      () => this.#create(),
      options.port,
      options.hosts,
      'hub.workloadPort',
    );
    this.#servers.push(...(tcp.servers as http.Server[]));
    return tcp.port;
  }

  #create(): http.Server {
    const server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#log.warn({ err }, 'workload API request failed');
        if (!res.headersSent) replyJson(res, 500, { message: 'internal error' });
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    return server;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://workload');
    const version = url.searchParams.get('api-version');
    if (!version || version < WORKLOAD_API_VERSION) {
      replyJson(res, 400, { message: `api-version ${WORKLOAD_API_VERSION} or newer required` });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/trust-bundle') {
      replyJson(res, 200, { certificate: this.#trustBundle() });
      return;
    }
    const sign = SIGN_PATH.exec(url.pathname);
    if (req.method === 'POST' && sign) {
      await this.#sign(req, res, decodeURIComponent(sign[1]!), decodeURIComponent(sign[2]!));
      return;
    }
    replyJson(res, 404, { message: 'not found' });
  }

  async #sign(
    req: IncomingMessage,
    res: ServerResponse,
    moduleId: string,
    genId: string,
  ): Promise<void> {
    const creds = this.#identities.module(moduleId);
    if (!creds || creds.generationId !== genId) {
      this.#log.warn({ moduleId }, 'workload sign refused: unknown module or generation');
      replyJson(res, 404, { message: `module not found: ${moduleId}` });
      return;
    }
    const text = await readBodyUpTo(req, MAX_BODY_BYTES);
    let body: SignRequest | undefined;
    try {
      body = text === undefined ? undefined : (JSON.parse(text) as SignRequest);
    } catch {
      body = undefined;
    }
    if (!body || body.algo !== 'HMACSHA256' || typeof body.data !== 'string') {
      replyJson(res, 400, { message: 'expected {keyId, algo: "HMACSHA256", data}' });
      return;
    }
    replyJson(res, 200, { digest: signBase64(creds.key, Buffer.from(body.data, 'base64')) });
  }

  /** Stops all listeners. */
  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
    this.#servers = [];
  }
}
