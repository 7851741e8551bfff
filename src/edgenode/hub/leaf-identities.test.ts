import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCa, issueCertificate } from '../../common/pki.js';
import { LEAF_CACHE_FILE, LeafIdentities } from './leaf-identities.js';

const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');

function der(certPem: string): Buffer {
  return new X509Certificate(certPem).raw;
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
    expect(() => leaves.verifyCertificate('cam', der(good.certPem))).not.toThrow();
    expect(() => leaves.verifyCertificate('cam', der(other.certPem))).toThrow(
      'certificate thumbprint does not match',
    );
    expect(() => leaves.verifyCertificate('sas', der(good.certPem))).toThrow(
      'the device has no X.509 thumbprint',
    );
    expect(() => leaves.verifyCertificate('nobody', der(good.certPem))).toThrow('unknown identity');
    const later = Date.now() + 2 * 365 * 24 * 3600 * 1000;
    expect(() => leaves.verifyCertificate('cam', der(good.certPem), later)).toThrow(
      'certificate is not valid now',
    );
  });
});
