import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCa, issueCertificate } from '../../common/pki.js';
import { LEAF_CACHE_FILE, LeafIdentities } from './leaf-identities.js';

const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');

/** A presented chain: the certificates' DER, the device's own first. */
function chain(...certPems: string[]): Buffer[] {
  return certPems.map((pem) => new X509Certificate(pem).raw);
}

describe('LeafIdentities: static and EdgeDevice leaves of a hub', () => {
  it('merges node.yaml leaves with EdgeDevice leaves, the EdgeDevice winning a clash', () => {
    const warnings: unknown[] = [];
    const log = { warn: (o: unknown) => warnings.push(o) } as never;
    const leaves = new LeafIdentities(mkdtempSync(path.join(tmpdir(), 'leaves-')), log);
    leaves.setStatic([
      { deviceId: 'local', primaryKey: KEY_A },
      { deviceId: 'both', primaryKey: KEY_A },
    ]);
    leaves.setCloud([{ deviceId: 'both', keys: [KEY_B] }]);
    expect(leaves.get('local')?.keys).toEqual([KEY_A]);
    expect(leaves.get('both')).toMatchObject({ keys: [KEY_B], source: 'cloud' });
    expect(warnings).toEqual([{ leaf: 'both' }]);
  });

  it('names the leaves whose access was withdrawn or changed, so their sessions can end', () => {
    const leaves = new LeafIdentities(mkdtempSync(path.join(tmpdir(), 'leaves-')));
    expect(
      leaves.setCloud([
        { deviceId: 'a', keys: [KEY_A] },
        { deviceId: 'b', keys: [KEY_A] },
        { deviceId: 'c', thumbprints: ['AB'.repeat(32)] },
      ]),
    ).toEqual([]);
    const changed = leaves.setCloud([
      { deviceId: 'a', keys: [KEY_A] },
      { deviceId: 'b', keys: [KEY_B] },
    ]);
    expect(changed.sort()).toEqual(['b', 'c']);
    expect(leaves.has('c')).toBe(false);
  });

  it('caches the EdgeDevice leaves on disk, owner-only, and loads them at the next start', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'leaves-'));
    new LeafIdentities(dir).setCloud([{ deviceId: 'a', keys: [KEY_A] }]);
    const file = path.join(dir, LEAF_CACHE_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toContain('"a"');
    const restarted = new LeafIdentities(dir);
    expect(restarted.get('a')?.keys).toEqual([KEY_A]);
  });

  it('accepts a client certificate only when its SHA-256 thumbprint is the leaf’s, and while valid', () => {
    const ca = createCa('leaf-ca');
    const good = issueCertificate(ca, { commonName: 'cam', usage: ['client'] });
    const other = issueCertificate(ca, { commonName: 'cam', usage: ['client'] });
    const thumbprint = new X509Certificate(good.certPem).fingerprint256; // AB:CD:… form
    const leaves = new LeafIdentities(mkdtempSync(path.join(tmpdir(), 'leaves-')));
    leaves.setCloud([
      { deviceId: 'cam', thumbprints: [thumbprint] },
      { deviceId: 'sas', keys: [KEY_A] },
    ]);
    expect(() => leaves.verifyCertificate('cam', chain(good.certPem))).not.toThrow();
    expect(() => leaves.verifyCertificate('cam', chain(other.certPem))).toThrow(
      'certificate thumbprint does not match',
    );
    expect(() => leaves.verifyCertificate('sas', chain(good.certPem))).toThrow(
      'the device has no X.509 credentials',
    );
    expect(() => leaves.verifyCertificate('nobody', chain(good.certPem))).toThrow(
      'unknown identity',
    );
    const later = Date.now() + 2 * 365 * 24 * 3600 * 1000;
    expect(() => leaves.verifyCertificate('cam', chain(good.certPem), later)).toThrow(
      'certificate is not valid now',
    );
  });

  it('accepts a certificate its CA signed, directly or through intermediates it sent, for the CN of the device only', () => {
    const root = createCa('fleet-root');
    const intermediate = createCa('fleet-intermediate', root);
    const direct = issueCertificate(root, { commonName: 'sensor-7', usage: ['client'] });
    const viaIntermediate = issueCertificate(intermediate, {
      commonName: 'sensor-7',
      usage: ['client'],
    });
    const otherDevice = issueCertificate(root, { commonName: 'sensor-8', usage: ['client'] });
    const stranger = issueCertificate(createCa('elsewhere'), {
      commonName: 'sensor-7',
      usage: ['client'],
    });
    const leaves = new LeafIdentities(mkdtempSync(path.join(tmpdir(), 'leaves-')));
    leaves.setCloud([{ deviceId: 'sensor-7', caCertificates: [root.certPem] }]);
    expect(() => leaves.verifyCertificate('sensor-7', chain(direct.certPem))).not.toThrow();
    expect(() =>
      leaves.verifyCertificate('sensor-7', chain(viaIntermediate.certPem, intermediate.certPem)),
    ).not.toThrow();
    expect(() => leaves.verifyCertificate('sensor-7', chain(viaIntermediate.certPem))).toThrow(
      "certificate is not signed by the device's CA certificates",
    );
    expect(() => leaves.verifyCertificate('sensor-7', chain(stranger.certPem))).toThrow(
      "certificate is not signed by the device's CA certificates",
    );
    expect(() => leaves.verifyCertificate('sensor-7', chain(otherDevice.certPem))).toThrow(
      'certificate subject CN is not the device id',
    );
    // A device certificate is no CA: a chain through one is refused.
    const forged = issueCertificate(direct, { commonName: 'sensor-7', usage: ['client'] });
    expect(() =>
      leaves.verifyCertificate('sensor-7', chain(forged.certPem, direct.certPem)),
    ).toThrow("certificate is not signed by the device's CA certificates");
  });

  it('keeps only CA certificates that parse as CAs, and ends sessions when they change', () => {
    const root = createCa('fleet-root');
    const device = issueCertificate(root, { commonName: 'x', usage: ['client'] });
    const leaves = new LeafIdentities(mkdtempSync(path.join(tmpdir(), 'leaves-')));
    leaves.setCloud([
      { deviceId: 'x', caCertificates: [root.certPem, device.certPem, 'not a certificate'] },
    ]);
    expect(leaves.get('x')?.caCertificates).toEqual([root.certPem]);
    expect(leaves.setCloud([{ deviceId: 'x', caCertificates: [createCa('new').certPem] }])).toEqual(
      ['x'],
    );
  });
});
