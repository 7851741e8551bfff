/**
 * X.509 client authentication as IoT Hub does it, shared by the device hub (leaf devices) and the
 * gateways (devices): a certificate is accepted by its SHA-256 thumbprint, or when it chains to a
 * CA the identity names and its subject CN is the identity's name ("CA-signed").
 */
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { ErrorCode, KedgeError } from './errors.js';

/** The certificates an identity accepts. */
export interface X509Credentials {
  /** SHA-256 thumbprints, lowercase hex without separators. */
  thumbprints: readonly string[];
  /** PEM CA certificates that sign its certificates. */
  caCertificates: readonly string[];
}

/** Intermediates followed at most between a device certificate and its CA. */
const MAX_CHAIN_DEPTH = 4;
const THUMBPRINT = /^[0-9a-f]{64}$/;

/** A thumbprint in the form compared: lowercase hex, no colons. */
export function normalizeThumbprint(text: string): string {
  return text.replaceAll(':', '').toLowerCase();
}

/** The thumbprints that are SHA-256 hex, normalized. */
export function validThumbprints(thumbprints: readonly string[]): string[] {
  return thumbprints.map(normalizeThumbprint).filter((t) => THUMBPRINT.test(t));
}

/** The CA certificates that parse as CA certificates. */
export function usableCaCertificates(pems: readonly string[]): string[] {
  return pems.filter((pem) => {
    try {
      return new X509Certificate(pem).ca;
    } catch {
      return false;
    }
  });
}

/** What is wrong with a CA certificate an identity names, or undefined when it is usable. */
export function caCertificateProblem(pem: string, nowMs = Date.now()): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    return `is not a PEM certificate: ${(err as Error).message}`;
  }
  if (!cert.ca) return 'is not a CA certificate (basicConstraints CA:FALSE)';
  if (Date.parse(cert.validTo) < nowMs) return `expired on ${new Date(cert.validTo).toISOString()}`;
  return undefined;
}

/**
 * Checks the certificate chain a client presented (DER, its own first, then any intermediates it
 * sent) for identity `name`. Throws `KEDGE_ERR_UNAUTHORIZED` with a loggable reason.
 */
export function verifyClientChain(
  name: string,
  chain: readonly Buffer[],
  accepted: X509Credentials,
  nowMs = Date.now(),
): X509Certificate {
  if (accepted.thumbprints.length === 0 && accepted.caCertificates.length === 0)
    throw unauthorized('the device has no X.509 credentials');
  const [cert, ...intermediates] = chain.map((der) => new X509Certificate(der));
  if (!cert) throw unauthorized('no client certificate');
  if (!validAt(cert, nowMs)) throw unauthorized('certificate is not valid now');
  if (accepted.thumbprints.includes(normalizeThumbprint(cert.fingerprint256))) return cert;
  if (accepted.caCertificates.length === 0)
    throw unauthorized('certificate thumbprint does not match');
  if (commonName(cert) !== name) throw unauthorized('certificate subject CN is not the device id');
  const anchors = accepted.caCertificates.map((pem) => new X509Certificate(pem));
  if (!chainsTo(cert, intermediates, anchors, nowMs))
    throw unauthorized("certificate is not signed by the device's CA certificates");
  return cert;
}

/** The client's certificate and the intermediates it sent (DER), its own first. */
export function peerCertificateChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.raw && !chain.some((c) => c.equals(cert!.raw))) {
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** The subject's common name, or undefined. */
export function commonName(cert: X509Certificate): string | undefined {
  const line = cert.subject.split('\n').find((l) => l.startsWith('CN='));
  return line?.slice('CN='.length);
}

function unauthorized(message: string): KedgeError {
  return new KedgeError(ErrorCode.Unauthorized, message);
}

function validAt(cert: X509Certificate, nowMs: number): boolean {
  return Date.parse(cert.validFrom) <= nowMs && Date.parse(cert.validTo) >= nowMs;
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/** True when `cert` leads to one of `anchors` through CA `intermediates`, all valid now. */
function chainsTo(
  cert: X509Certificate,
  intermediates: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  nowMs: number,
): boolean {
  let current = cert;
  for (let depth = 0; depth <= MAX_CHAIN_DEPTH; depth++) {
    const anchor = anchors.find((a) => issuedBy(current, a));
    if (anchor) return validAt(anchor, nowMs);
    const next = intermediates.find((i) => i.ca && validAt(i, nowMs) && issuedBy(current, i));
    if (!next) return false;
    current = next;
  }
  return false;
}
