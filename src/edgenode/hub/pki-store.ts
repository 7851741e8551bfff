/**
 * The per-device CA and the hub server certificate, created on first start and persisted in the
 * data directory. The server certificate is re-issued (by the same CA) when the configured host
 * names change, and before it expires: at start, and while the hub runs (see `Hub`).
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCa, issueCertificate, type KeyPair } from '../../common/pki.js';

/** The hub's TLS material. */
export interface HubPki {
  ca: KeyPair;
  server: KeyPair;
  /** PEM the workload API serves as the trust bundle. */
  trustBundlePem: string;
}

/** How long server certificates live and when they are replaced. */
export interface ServerCertLifetime {
  /** Validity of a newly issued server certificate (s). */
  validitySecs: number;
  /** Re-issue when less than this remains (s). */
  renewBeforeSecs: number;
}

const MS_PER_SEC = 1000;

function readPair(dir: string, name: string): KeyPair | undefined {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  if (!existsSync(cert) || !existsSync(key)) return undefined;
  return { certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

function writePair(dir: string, name: string, pair: KeyPair): void {
  writeFileSync(path.join(dir, `${name}.key`), pair.keyPem, { mode: 0o600 });
  writeFileSync(path.join(dir, `${name}.crt`), pair.certPem);
}

/** When the server certificate should be replaced (epoch ms). */
export function renewAtMs(server: KeyPair, lifetime: ServerCertLifetime): number {
  const notAfterMs = Date.parse(new X509Certificate(server.certPem).validTo);
  return notAfterMs - lifetime.renewBeforeSecs * MS_PER_SEC;
}

function serverCertFits(
  server: KeyPair,
  ca: KeyPair,
  hostNames: string[],
  lifetime: ServerCertLifetime,
): boolean {
  const cert = new X509Certificate(server.certPem);
  if (!cert.verify(new X509Certificate(ca.certPem).publicKey)) return false;
  if (renewAtMs(server, lifetime) <= Date.now()) return false;
  const san = cert.subjectAltName ?? '';
  return hostNames.every((h) => san.includes(`DNS:${h}`) || san.includes(`IP Address:${h}`));
}

/** Issues and persists a new server certificate whose SAN covers `hostNames`. */
export function issueServerCert(
  dataDir: string,
  ca: KeyPair,
  hostNames: string[],
  lifetime: ServerCertLifetime,
): KeyPair {
  const server = issueCertificate(ca, {
    commonName: hostNames[0] ?? 'kedge-hub',
    altNames: hostNames,
    usage: ['server'],
    validitySecs: lifetime.validitySecs,
  });
  writePair(path.join(dataDir, 'pki'), 'hub-server', server);
  return server;
}

/** Loads or creates the CA and a server certificate whose SAN covers `hostNames`. */
export function ensureHubPki(
  dataDir: string,
  deviceId: string,
  hostNames: string[],
  lifetime: ServerCertLifetime,
): HubPki {
  const dir = path.join(dataDir, 'pki');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let ca = readPair(dir, 'device-ca');
  if (!ca) {
    ca = createCa(`kedge device CA ${deviceId}`);
    writePair(dir, 'device-ca', ca);
  }
  let server = readPair(dir, 'hub-server');
  if (!server || !serverCertFits(server, ca, hostNames, lifetime))
    server = issueServerCert(dataDir, ca, hostNames, lifetime);
  return { ca, server, trustBundlePem: ca.certPem };
}
