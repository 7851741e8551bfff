import { KubeConfig } from '@kubernetes/client-node';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCa, issueCertificate } from '../../common/pki.js';
import { KubeClient, Resources } from './client.js';

describe('KubeClient', () => {
  let server: Server;
  let handshakes = 0;
  let client: KubeClient;

  beforeAll(async () => {
    const ca = createCa('test-ca');
    const serving = issueCertificate(ca, { commonName: 'apiserver', altNames: ['127.0.0.1'] });
    const user = issueCertificate(ca, { commonName: 'admin', usage: ['client'] });
    server = createServer(
      { cert: serving.certPem, key: serving.keyPem, ca: ca.certPem, requestCert: true },
      (req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ metadata: { name: req.url?.split('/').pop() } }));
      },
    );
    server.on('secureConnection', () => handshakes++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const kc = new KubeConfig();
    const b64 = (pem: string): string => Buffer.from(pem).toString('base64');
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
          caData: b64(ca.certPem),
        },
      ],
      users: [{ name: 'u', certData: b64(user.certPem), keyData: b64(user.keyPem) }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    client = new KubeClient(kc);
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('reuses its TLS connection across requests instead of a handshake per request', async () => {
    for (let i = 0; i < 20; i++) {
      const node = await client.get(Resources.nodes, `n${i}`);
      expect(node.metadata.name).toBe(`n${i}`);
    }
    expect(handshakes).toBe(1);
  });
});
