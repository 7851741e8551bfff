import { Agent, request, type RequestOptions } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { ErrorCode, KedgeError } from '../../common/errors.js';

/** A Kubernetes object as kedge handles it: typed metadata, anything else. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
    creationTimestamp?: string;
    generateName?: string;
  };
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeList<T> {
  apiVersion?: string;
  /** `<Kind>List`. */
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** An API error with the HTTP status and the server's Status message. */
export class KubeApiError extends KedgeError {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(status === 404 ? ErrorCode.NotFound : ErrorCode.Unavailable, message);
  }
}

export const isNotFound = (err: unknown): boolean =>
  err instanceof KubeApiError && err.status === 404;
export const isConflict = (err: unknown): boolean =>
  err instanceof KubeApiError && err.status === 409;

export type PatchType = 'merge' | 'json' | 'apply' | 'strategic';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
  strategic: 'application/strategic-merge-patch+json',
};

/** Where a resource lives: `/api/v1` or `/apis/<group>/<version>`, plural, and namespace. */
export interface ResourceRef {
  apiPath: string;
  plural: string;
  namespace?: string;
}

/** Builds the URL path of a collection or one object. */
export function resourcePath(ref: ResourceRef, name?: string, subresource?: string): string {
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : '';
  const obj = name ? `/${encodeURIComponent(name)}` : '';
  const sub = subresource ? `/${subresource}` : '';
  return `${ref.apiPath}${ns}/${ref.plural}${obj}${sub}`;
}

/** Request options for {@link KubeClient.request}. */
export interface KubeRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
}

/**
 * Connections for plain requests, kept alive; requests beyond it wait for a free one. It bounds
 * the controller's burst against the API server (reconcilers, slow-start batches and lease
 * renewals share it), and is well above one slow-start batch, so pod creation cannot take every
 * connection from the status writes that follow it. Watches and log streams use connections of their own, outside the bound.
 */
const MAX_REQUEST_SOCKETS = 64;

/** The TLS material an agent was made for; a change (rotated client cert) makes a new agent. */
const TLS_FIELDS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'servername',
  'rejectUnauthorized',
] as const;

/** Counts API requests, for metrics and benchmarks. */
export type RequestObserver = (method: string, status: number) => void;

/**
 * A small Kubernetes REST client over node:https, configured from a KubeConfig. It does what
 * kedge needs (CRUD, patches, server-side apply, status, streaming watch) with typed errors.
 */
export class KubeClient {
  readonly #kc: KubeConfig;
  readonly #server: URL;
  #observer: RequestObserver | undefined;
  #agents: { material: unknown[]; requests: Agent; streams: Agent } | undefined;

  constructor(kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster)
      throw new KedgeError(ErrorCode.InvalidConfig, 'kubeconfig has no current cluster');
    this.#kc = kc;
    this.#server = new URL(cluster.server);
  }

  /** Loads from a kubeconfig path, else in-cluster or the default locations. */
  static fromConfig(kubeconfigPath?: string): KubeClient {
    const kc = new KubeConfig();
    if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
    else kc.loadFromDefault();
    return new KubeClient(kc);
  }

  get kubeConfig(): KubeConfig {
    return this.#kc;
  }

  observe(observer: RequestObserver): void {
    this.#observer = observer;
  }

  async get<T extends KubeObject>(
    ref: ResourceRef,
    name: string,
    subresource?: string,
  ): Promise<T> {
    return this.request<T>({ method: 'GET', path: resourcePath(ref, name, subresource) });
  }

  /** GET that returns undefined on 404. */
  async find<T extends KubeObject>(ref: ResourceRef, name: string): Promise<T | undefined> {
    return this.get<T>(ref, name).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
  }

  async list<T extends KubeObject>(
    ref: ResourceRef,
    query: KubeRequest['query'] = {},
  ): Promise<KubeList<T>> {
    return this.request<KubeList<T>>({ method: 'GET', path: resourcePath(ref), query });
  }

  async create<T extends KubeObject>(ref: ResourceRef, body: T): Promise<T> {
    return this.request<T>({ method: 'POST', path: resourcePath(ref), body });
  }

  async replace<T extends KubeObject>(ref: ResourceRef, body: T, subresource?: string): Promise<T> {
    return this.request<T>({
      method: 'PUT',
      path: resourcePath(ref, body.metadata.name, subresource),
      body,
    });
  }

  async patch<T extends KubeObject>(
    ref: ResourceRef,
    name: string,
    patch: unknown,
    options: {
      type?: PatchType;
      subresource?: string;
      fieldManager?: string;
      force?: boolean;
    } = {},
  ): Promise<T> {
    const type = options.type ?? 'merge';
    return this.request<T>({
      method: 'PATCH',
      path: resourcePath(ref, name, options.subresource),
      body: patch,
      contentType: PATCH_CONTENT_TYPES[type],
      query: { fieldManager: options.fieldManager, force: options.force },
    });
  }

  async delete(ref: ResourceRef, name: string, body?: Record<string, unknown>): Promise<void> {
    await this.request({ method: 'DELETE', path: resourcePath(ref, name), body }).catch(
      (err: unknown) => {
        if (!isNotFound(err)) throw err;
      },
    );
  }

  /** Sends a request and parses the JSON answer; non-2xx answers become {@link KubeApiError}. */
  async request<T>(req: KubeRequest): Promise<T> {
    const res = await this.#send(req);
    const text = await readBody(res);
    const status = res.statusCode ?? 0;
    this.#observer?.(req.method, status);
    if (status < 200 || status >= 300) throw apiError(status, text, req);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** Opens a streaming GET (watch, logs); the caller consumes and destroys the response. */
  async stream(req: KubeRequest): Promise<IncomingMessage> {
    const res = await this.#send(req, true);
    const status = res.statusCode ?? 0;
    this.#observer?.(req.method, status);
    if (status < 200 || status >= 300) throw apiError(status, await readBody(res), req);
    return res;
  }

  async #send(req: KubeRequest, streaming = false): Promise<IncomingMessage> {
    const url = new URL(req.path, this.#server);
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const opts: RequestOptions = { method: req.method, headers: { Accept: 'application/json' } };
    await this.#kc.applyToHTTPSOptions(opts);
    opts.agent = this.#reusableAgent(opts, streaming);
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    if (body !== undefined) {
      // Node does not frame DELETE bodies on its own; without a length the server ignores them.
      const length = Buffer.byteLength(body);
      opts.headers = {
        ...opts.headers,
        'Content-Type': req.contentType ?? 'application/json',
        'Content-Length': length,
      };
    }
    return new Promise((resolve, reject) => {
      const r = request(url, opts, resolve);
      r.on('error', (cause) =>
        reject(
          new KedgeError(ErrorCode.Unavailable, `API server unreachable: ${cause.message}`, {
            cause,
          }),
        ),
      );
      r.end(body);
    });
  }

  /**
   * KubeConfig hands out a new Agent for every request, which means a TCP connection, a TLS
   * handshake with the client certificate and a fresh TLS context each time: the costliest part
   * of a request for both ends. Instead, one TLS context per identity, and one bounded keep-alive
   * agent for requests plus one for streams. Proxy agents are kept as they are.
   */
  #reusableAgent(opts: RequestOptions, streaming: boolean): RequestOptions['agent'] {
    if (opts.agent?.constructor !== Agent) return opts.agent;
    const material: unknown[] = TLS_FIELDS.map((f) => opts[f]);
    if (!this.#agents || !sameMaterial(this.#agents.material, material)) {
      this.#agents?.requests.destroy();
      const secureContext = createSecureContext({
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        pfx: opts.pfx,
        passphrase: opts.passphrase,
      });
      const base = {
        secureContext,
        servername: opts.servername,
        rejectUnauthorized: opts.rejectUnauthorized,
      };
      this.#agents = {
        material,
        requests: new Agent({
          ...base,
          keepAlive: true,
          maxSockets: MAX_REQUEST_SOCKETS,
          maxFreeSockets: MAX_REQUEST_SOCKETS,
        }),
        streams: new Agent(base),
      };
    }
    return streaming ? this.#agents.streams : this.#agents.requests;
  }
}

function sameMaterial(a: unknown[], b: unknown[]): boolean {
  return a.every((x, i) => {
    const y = b[i];
    return Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : x === y;
  });
}

async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function apiError(status: number, text: string, req: KubeRequest): KubeApiError {
  let message = text.slice(0, 500);
  let reason = '';
  try {
    const parsed = JSON.parse(text) as { message?: string; reason?: string };
    message = parsed.message ?? message;
    reason = parsed.reason ?? '';
  } catch {
    // not a Status object
  }
  return new KubeApiError(status, reason, `${req.method} ${req.path}: ${status} ${message}`);
}

/** Resource references kedge uses. */
export const Resources = {
  nodes: { apiPath: '/api/v1', plural: 'nodes' },
  namespaces: { apiPath: '/api/v1', plural: 'namespaces' },
  pods: (namespace?: string): ResourceRef => ({ apiPath: '/api/v1', plural: 'pods', namespace }),
  secrets: (namespace?: string): ResourceRef => ({
    apiPath: '/api/v1',
    plural: 'secrets',
    namespace,
  }),
  configMaps: (namespace: string): ResourceRef => ({
    apiPath: '/api/v1',
    plural: 'configmaps',
    namespace,
  }),
  events: (namespace: string): ResourceRef => ({ apiPath: '/api/v1', plural: 'events', namespace }),
  leases: (namespace: string): ResourceRef => ({
    apiPath: '/apis/coordination.k8s.io/v1',
    plural: 'leases',
    namespace,
  }),
  controllerRevisions: (namespace: string): ResourceRef => ({
    apiPath: '/apis/apps/v1',
    plural: 'controllerrevisions',
    namespace,
  }),
  edgeDevices: (namespace?: string): ResourceRef => ({
    apiPath: '/apis/kedge.io/v1alpha1',
    plural: 'edgedevices',
    namespace,
  }),
  edgeDeployments: (namespace?: string): ResourceRef => ({
    apiPath: '/apis/kedge.io/v1alpha1',
    plural: 'edgedeployments',
    namespace,
  }),
  routes: (namespace?: string): ResourceRef => ({
    apiPath: '/apis/kedge.io/v1alpha1',
    plural: 'routes',
    namespace,
  }),
} as const;
