import type { IncomingMessage } from 'node:http';
import { requestedNode } from './kubelet-api.js';

const request = (headers: Record<string, string>): IncomingMessage =>
  ({ headers }) as unknown as IncomingMessage;

describe('requestedNode: which node a kubelet API request was sent to', () => {
  it('takes the node from the X-Forwarded-Uri the API server node proxy sets', () => {
    const path = '/api/v1/nodes/dev-b.tenant-b.kedge/proxy/containerLogs/a/p/c';
    expect(
      requestedNode(request({ 'x-forwarded-uri': path, 'x-forwarded-for': '10.0.0.1' })),
    ).toEqual({
      node: 'dev-b.tenant-b.kedge',
    });
  });

  it('drops the scheme and port the proxy path may carry', () => {
    for (const name of ['n1.ns.kedge:10250', 'https:n1.ns.kedge:10250'])
      expect(
        requestedNode(
          request({ 'x-forwarded-uri': `/api/v1/nodes/${name}/proxy/containerLogs/a/p/c` }),
        ),
      ).toEqual({ node: 'n1.ns.kedge' });
  });

  it('names no node for a pods/log request, which carries no forwarding headers', () => {
    expect(requestedNode(request({ host: '172.17.0.1:10250' }))).toEqual({ node: undefined });
  });

  it('refuses upgraded requests, whose headers the client controls', () => {
    const forged = {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'x-forwarded-uri': '/api/v1/nodes/a.ns.kedge/proxy/containerLogs/a/p/c',
    };
    expect(requestedNode(request(forged))).toHaveProperty('refused');
  });

  it('refuses a forwarded request that names no node, or another path', () => {
    expect(requestedNode(request({ 'x-forwarded-for': '10.0.0.1' }))).toHaveProperty('refused');
    expect(
      requestedNode(request({ 'x-forwarded-uri': '/api/v1/namespaces/a/pods/p/proxy/x' })),
    ).toHaveProperty('refused');
  });
});
