/**
 * `metrics.k8s.io/v1beta1` for kedge nodes and their pods, served by the service API when the
 * cluster has no metrics-server (which cannot scrape kedge nodes, ADR 0024): what `kubectl top`
 * reads. Each request is authorized for the end user, as metrics-server's own API is.
 */
import {
  METRICS_GROUP,
  METRICS_VERSION,
  type NodeMetrics,
  type PodMetrics,
} from '../../provider/metrics-objects.js';
import type { EndUser } from './front-proxy.js';
import { failure, type Reply } from './server.js';

const GROUP_VERSION = `${METRICS_GROUP}/${METRICS_VERSION}`;
const PREFIX = `/apis/${GROUP_VERSION}`;

/** Where the metrics come from: the devices' latest samples. */
export interface MetricsSource {
  nodes(): NodeMetrics[];
  /** Pods of one namespace, or of all when undefined. */
  pods(namespace?: string): PodMetrics[];
}

/** Asks the API server whether the user may do this; undefined when allowed, else why not. */
export type AccessCheck = (
  user: EndUser,
  attributes: { group: string; resource: string; verb: string; namespace?: string; name?: string },
) => Promise<string | undefined>;

/** The group as `/apis` lists it. */
export const METRICS_API_GROUP = {
  name: METRICS_GROUP,
  versions: [{ groupVersion: GROUP_VERSION, version: METRICS_VERSION }],
  preferredVersion: { groupVersion: GROUP_VERSION, version: METRICS_VERSION },
};

/** What a metrics path asks for. */
interface MetricsRequest {
  resource: 'nodes' | 'pods';
  namespace?: string;
  name?: string;
}

/** `/apis/metrics.k8s.io/v1beta1/{nodes[/n] | pods | namespaces/{ns}/pods[/p]}` */
function parse(path: string): MetricsRequest | undefined {
  if (!path.startsWith(`${PREFIX}/`)) return undefined;
  const parts = path
    .slice(PREFIX.length + 1)
    .split('/')
    .map(decodeURIComponent);
  const [a, b, c, d, ...rest] = parts;
  if (rest.length > 0) return undefined;
  if (a === 'nodes' && c === undefined) return { resource: 'nodes', ...(b ? { name: b } : {}) };
  if (a === 'pods' && b === undefined) return { resource: 'pods' };
  if (a === 'namespaces' && b && c === 'pods')
    return { resource: 'pods', namespace: b, ...(d ? { name: d } : {}) };
  return undefined;
}

/** Discovery of the group and its version; undefined for other paths. */
function discovery(path: string): object | undefined {
  if (path === `/apis/${METRICS_GROUP}`)
    return { kind: 'APIGroup', apiVersion: 'v1', ...METRICS_API_GROUP };
  if (path !== PREFIX) return undefined;
  const resource = (name: string, kind: string, namespaced: boolean): object => ({
    name,
    singularName: '',
    namespaced,
    kind,
    verbs: ['get', 'list'],
  });
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: GROUP_VERSION,
    resources: [resource('nodes', 'NodeMetrics', false), resource('pods', 'PodMetrics', true)],
  };
}

/** Whether a path belongs to the metrics group. */
export function isMetricsPath(path: string): boolean {
  return path === `/apis/${METRICS_GROUP}` || path.startsWith(`/apis/${METRICS_GROUP}/`);
}

/** Answers a request under `/apis/metrics.k8s.io`. */
export async function serveMetrics(
  path: string,
  query: URLSearchParams,
  user: EndUser,
  deps: { source: MetricsSource; access: AccessCheck },
): Promise<Reply> {
  const found = discovery(path);
  if (found) return { status: 200, body: found };
  const request = parse(path);
  if (!request) return failure(404, 'NotFound', `kedge: ${path} is not served`);
  const selector = parseSelector(query.get('labelSelector') ?? '');
  if (typeof selector === 'string') return failure(400, 'BadRequest', selector);
  if (query.get('fieldSelector'))
    return failure(400, 'BadRequest', 'kedge: field selectors are not supported on metrics');
  const verb = request.name ? 'get' : 'list';
  const denied = await deps.access(user, {
    group: METRICS_GROUP,
    resource: request.resource,
    verb,
    ...(request.namespace ? { namespace: request.namespace } : {}),
    ...(request.name ? { name: request.name } : {}),
  });
  if (denied !== undefined) return failure(403, 'Forbidden', denied);
  return answer(request, selector, deps.source);
}

function answer(request: MetricsRequest, selector: Selector, source: MetricsSource): Reply {
  const items: (NodeMetrics | PodMetrics)[] =
    request.resource === 'nodes' ? source.nodes() : source.pods(request.namespace);
  if (!request.name) {
    const kind = request.resource === 'nodes' ? 'NodeMetricsList' : 'PodMetricsList';
    const selected = items.filter((i) => selector(i.metadata.labels));
    return {
      status: 200,
      body: { kind, apiVersion: GROUP_VERSION, metadata: {}, items: selected },
    };
  }
  const item = items.find((i) => i.metadata.name === request.name);
  if (item) return { status: 200, body: item };
  const what = `${request.resource}.${METRICS_GROUP} "${request.name}"`;
  return failure(404, 'NotFound', `${what} not found`);
}

type Selector = (labels: Record<string, string>) => boolean;

/**
 * An equality-based label selector (`a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated), or the
 * message that refuses it. Set-based terms (`in`, `notin`) are not supported.
 */
export function parseSelector(text: string): Selector | string {
  const terms = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const tests: Selector[] = [];
  for (const term of terms) {
    const m = /^(!?)([\w./-]+)(?:\s*(!=|==|=)\s*([\w.-]*))?$/.exec(term);
    if (!m)
      return `kedge: label selector term "${term}" is not supported (only =, ==, != and existence)`;
    const [, not, key, op, value] = m as unknown as [string, string, string, string?, string?];
    if (not && op) return `kedge: label selector term "${term}" is invalid`;
    if (!op) tests.push((l) => key in l !== (not === '!'));
    else if (op === '!=') tests.push((l) => l[key] !== value);
    else tests.push((l) => l[key] === value);
  }
  return (labels) => tests.every((t) => t(labels));
}
