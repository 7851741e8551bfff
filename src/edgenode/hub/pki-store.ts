/**
 * The per-device CA and the hub server certificate, created on first start and persisted in the
 * data directory. The server certificate is re-issued (by the same CA) when the configured host
 * names change, so the SAN always covers the gateway host name.
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

/** Server certificates are short-lived relative to the CA; re-issued on start when near expiry. */
const SERVER_CERT_VALIDITY_DAYS = 90;
const RENEW_BEFORE_MS = 14 * 24 * 3600 * 1000;

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

function serverCertFits(server: KeyPair, ca: KeyPair, hostNames: string[]): boolean {
  const cert = new X509Certificate(server.certPem);
  if (!cert.verify(new X509Certificate(ca.certPem).publicKey)) return false;
  if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS) return false;
  const san = cert.subjectAltName ?? '';
  return hostNames.every((h) => san.includes(`DNS:${h}`) || san.includes(`IP Address:${h}`));
}

/** Loads or creates the CA and a server certificate whose SAN covers `hostNames`. */
export function ensureHubPki(dataDir: string, deviceId: string, hostNames: string[]): HubPki {
  const dir = path.join(dataDir, 'pki');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let ca = readPair(dir, 'device-ca');
  if (!ca) {
    ca = createCa(`kedge device CA ${deviceId}`);
    writePair(dir, 'device-ca', ca);
  }
  let server = readPair(dir, 'hub-server');
  if (!server || !serverCertFits(server, ca, hostNames)) {
    server = issueCertificate(ca, {
      commonName: hostNames[0] ?? 'kedge-hub',
      altNames: hostNames,
      usage: ['server'],
      validityDays: SERVER_CERT_VALIDITY_DAYS,
    });
    writePair(dir, 'hub-server', server);
  }
  return { ca, server, trustBundlePem: ca.certPem };
}
