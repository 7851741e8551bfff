import type { EndUser } from './front-proxy.js';
import { parseSelector, serveMetrics, type MetricsSource } from './metrics-api.js';

const pod = (name: string, namespace: string, labels: Record<string, string>) => ({
  kind: 'PodMetrics' as const,
  apiVersion: 'metrics.k8s.io/v1beta1',
  metadata: { name, namespace, labels, creationTimestamp: '' },
  timestamp: '',
  window: '15s',
  containers: [],
});
const source: MetricsSource = {
  nodes: () => [],
  pods: (ns) =>
    [pod('a', 'x', { app: 'a' }), pod('b', 'x', { app: 'b' }), pod('c', 'y', {})].filter(
      (p) => ns === undefined || p.metadata.namespace === ns,
    ),
};
const user: EndUser = { user: 'alice', groups: [], extra: {} };
const asked: unknown[] = [];
const allow = async (_u: EndUser, attributes: unknown): Promise<undefined> => {
  asked.push(attributes);
  return undefined;
};
const serve = (path: string, query = '') =>
  serveMetrics(path, new URLSearchParams(query), user, { source, access: allow });

describe('metrics.k8s.io through the service API', () => {
  it("lists a namespace's pods, filtered by label, authorized as list pods there", async () => {
    asked.length = 0;
    const reply = await serve(
      '/apis/metrics.k8s.io/v1beta1/namespaces/x/pods',
      'labelSelector=app%3Db',
    );
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      kind: 'PodMetricsList',
      items: [{ metadata: { name: 'b' } }],
    });
    expect(asked).toEqual([
      { group: 'metrics.k8s.io', resource: 'pods', verb: 'list', namespace: 'x' },
    ]);
  });

  it('gets one pod, and answers 404 for a pod without metrics', async () => {
    expect((await serve('/apis/metrics.k8s.io/v1beta1/namespaces/y/pods/c')).status).toBe(200);
    const missing = await serve('/apis/metrics.k8s.io/v1beta1/namespaces/y/pods/a');
    expect(missing).toMatchObject({ status: 404, body: { reason: 'NotFound' } });
  });

  it('refuses what it does not serve, with a Status', async () => {
    expect(
      (await serve('/apis/metrics.k8s.io/v1beta1/namespaces/x/pods', 'labelSelector=app in (a)'))
        .status,
    ).toBe(400);
    expect((await serve('/apis/metrics.k8s.io/v1beta1/pods', 'fieldSelector=a%3Db')).status).toBe(
      400,
    );
    expect((await serve('/apis/metrics.k8s.io/v1beta1/services')).status).toBe(404);
  });

  it('passes a refusal on as 403', async () => {
    const reply = await serveMetrics(
      '/apis/metrics.k8s.io/v1beta1/nodes',
      new URLSearchParams(),
      user,
      { source, access: async () => 'no' },
    );
    expect(reply).toMatchObject({ status: 403, body: { message: 'no' } });
  });

  it('publishes discovery for the group and its two resources', async () => {
    const reply = await serve('/apis/metrics.k8s.io/v1beta1');
    expect((reply.body as { resources: { name: string }[] }).resources.map((r) => r.name)).toEqual([
      'nodes',
      'pods',
    ]);
  });
});

describe('parseSelector', () => {
  it.each([
    ['', {}, true],
    ['app=a', { app: 'a' }, true],
    ['app==a,tier!=db', { app: 'a', tier: 'web' }, true],
    ['app!=a', { app: 'a' }, false],
    ['kedge.io/module', { 'kedge.io/module': 'x' }, true],
    ['!kedge.io/module', { 'kedge.io/module': 'x' }, false],
  ])('%s on %j is %s', (text, labels, matches) => {
    const selector = parseSelector(text);
    expect(typeof selector).toBe('function');
    expect((selector as (l: Record<string, string>) => boolean)(labels)).toBe(matches);
  });

  it('refuses set-based terms with a message', () => {
    expect(parseSelector('app in (a,b)')).toMatch(/not supported/);
  });
});
