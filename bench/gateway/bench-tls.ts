/** The CA devices trust and the gateway's serving certificate, made fresh for each bench run. */
import { createCa, issueCertificate, type KeyPair } from '../../src/common/pki.js';

export function benchGatewayTls(): { ca: KeyPair; serving: KeyPair } {
  const ca = createCa('kedge-bench-ca');
  const serving = issueCertificate(ca, {
    commonName: 'kedge-gateway',
    altNames: ['localhost', '127.0.0.1'],
    usage: ['server'],
  });
  return { ca, serving };
}
