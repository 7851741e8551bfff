// The hub re-issues its server certificate while it runs: real TLS and SDK clients across it.
import { once } from 'node:events';
import tls from 'node:tls';
import type { Hub } from '../../src/edgenode/hub/index.js';
import { eventually, jsonMessage, type SdkMessage, sdkModule, sleep, startHub } from './helpers.js';

/** A certificate short enough to expire during the test, renewed halfway. */
const VALIDITY_SECS = 20;
const RENEW_BEFORE_SECS = 10;
/** Past the original certificate's expiry, so only a renewed one can serve. */
const AFTER_EXPIRY_MS = 1_500;
const A_TO_B = 'FROM /messages/modules/a/outputs/* INTO BrokeredEndpoint("/modules/b/inputs/in")';

interface PeerCert {
  serial: string;
  validToMs: number;
}

/** The certificate a fresh TLS connection sees; rejects when it does not verify (e.g. expired). */
async function peerCert(port: number, caPem: string): Promise<PeerCert> {
  const socket = tls.connect({ port, host: '127.0.0.1', ca: caPem });
  try {
    await once(socket, 'secureConnect');
    const cert = socket.getPeerX509Certificate()!;
    return { serial: cert.serialNumber, validToMs: Date.parse(cert.validTo) };
  } finally {
    socket.destroy();
  }
}

describe('hub server certificate renewal', () => {
  let hub: Hub;
  afterEach(async () => hub?.stop());

  it('renews before expiry without restarting: a client connected before keeps working, new connections see the new serial', async () => {
    hub = await startHub({
      serverCert: { validitySecs: VALIDITY_SECS, renewBeforeSecs: RENEW_BEFORE_SECS },
      routes: { aToB: A_TO_B },
    });
    const ca = hub.trustBundlePem;
    const first = await peerCert(hub.ports.tls, ca);
    const a = await sdkModule(hub, 'a');
    const expiryMs = Math.min(first.validToMs, Date.now() + VALIDITY_SECS * 1000);
    await sleep(expiryMs + AFTER_EXPIRY_MS - Date.now());

    const mqtt = await peerCert(hub.ports.tls, ca);
    const methods = await peerCert(hub.ports.methods!, ca);
    expect(mqtt.serial).not.toBe(first.serial);
    expect(methods.serial).toBe(mqtt.serial);
    expect(mqtt.validToMs).toBeGreaterThan(Date.now());

    const b = await sdkModule(hub, 'b');
    const got: string[] = [];
    b.on('inputMessage', (_input: string, msg: SdkMessage) => {
      got.push(msg.getBytes().toString());
      b.complete(msg, () => undefined);
    });
    await sleep(200);
    await a.sendOutputEvent('out', jsonMessage({ after: 'renewal' }));
    await eventually(() => got.length === 1);
    expect(got).toEqual(['{"after":"renewal"}']);
    expect(await hub.metrics.value('kedge_hub_server_certificate_renewals_total')).toBeGreaterThan(
      0,
    );
    await a.close();
    await b.close();
  });
});
