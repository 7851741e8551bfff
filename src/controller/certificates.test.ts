import { X509Certificate } from 'node:crypto';
import { connect, createServer, type Server } from 'node:tls';
import { createCa } from '../common/pki.js';
import { renewingCertificate } from './certificates.js';

function presented(server: Server, caPem: string): Promise<string> {
  const { port } = server.address() as { port: number };
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: caPem }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.once('error', reject);
  });
}

describe('renewingCertificate', () => {
  it('serves a new certificate before the first one expires, on the same listening server', async () => {
    const ca = createCa('test-ca');
    const cert = renewingCertificate(
      ca,
      { commonName: 'test', altNames: [] },
      { validitySecs: 4, renewBeforeSecs: 2 },
    );
    const first = new X509Certificate(cert.current.certPem);
    const server = createServer({ cert: cert.current.certPem, key: cert.current.keyPem }, (s) =>
      s.end(),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cert.serve(server);
    try {
      expect(await presented(server, ca.certPem)).toBe(first.serialNumber);
      await new Promise((r) => setTimeout(r, Date.parse(first.validTo) - Date.now() + 500));
      const now = await presented(server, ca.certPem);
      expect(now).not.toBe(first.serialNumber);
      expect(Date.parse(new X509Certificate(cert.current.certPem).validTo)).toBeGreaterThan(
        Date.now(),
      );
    } finally {
      cert.stop();
      server.close();
    }
  });

  it('refuses a validity that is not a positive number of seconds', () => {
    expect(() =>
      renewingCertificate(createCa('t'), { commonName: 't', altNames: [] }, { validitySecs: NaN }),
    ).toThrow(/certificate validity must be over 0 s/);
  });
});
