import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import * as der from './der.js';

/** A certificate with its private key, both PEM. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

/** What to put in a certificate. */
export interface CertificateRequest {
  commonName: string;
  /** Organizations; Kubernetes reads them as groups. */
  organizations?: string[];
  /** DNS names and IP addresses for the subjectAltName. */
  altNames?: string[];
  /** Validity in days. Defaults to 365. */
  validityDays?: number;
  /** Validity in seconds from now; overrides `validityDays` (short-lived certificates, tests). */
  validitySecs?: number;
  /** `server`, `client` or both. Defaults to both. */
  usage?: ('server' | 'client')[];
}

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

const DEFAULT_VALIDITY_DAYS = 365;
/** CAs outlive the certificates they sign; ten years keeps device CAs stable. */
const CA_VALIDITY_DAYS = 3650;
/** Backdating absorbs small clock skew between device and cloud. */
const BACKDATE_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Creates an ECDSA P-256 certificate authority: self-signed, or an intermediate signed by
 * `parent`.
 */
export function createCa(commonName: string, parent?: KeyPair): KeyPair {
  const { privateKey, publicKey } = newKey();
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const name = distinguishedName(commonName, []);
  const extensions = [
    extension(OID.basicConstraints, der.sequence(der.boolean(true)), true),
    extension(OID.keyUsage, der.bitString(Buffer.from([0x06])), true), // keyCertSign | cRLSign
    extension(OID.subjectKeyIdentifier, der.octetString(keyId(spki))),
  ];
  const parentCert = parent && new X509Certificate(parent.certPem);
  const cert = signCertificate(
    {
      issuer: parentCert ? issuerName(parentCert) : name,
      subject: name,
      spki,
      extensions,
      days: CA_VALIDITY_DAYS,
    },
    parent ? createPrivateKey(parent.keyPem) : privateKey,
  );
  return { certPem: cert, keyPem: exportKey(privateKey) };
}

/** Issues a leaf certificate signed by `ca`. */
export function issueCertificate(ca: KeyPair, request: CertificateRequest): KeyPair {
  const { privateKey, publicKey } = newKey();
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const caCert = new X509Certificate(ca.certPem);
  const caSpki = caCert.publicKey.export({ type: 'spki', format: 'der' });
  const usage = request.usage ?? ['server', 'client'];
  const extensions = [
    extension(OID.basicConstraints, der.sequence(), true),
    extension(OID.keyUsage, der.bitString(Buffer.from([0xa0])), true), // digitalSignature | keyEncipherment
    extension(
      OID.extKeyUsage,
      der.sequence(...usage.map((u) => der.oid(u === 'server' ? OID.serverAuth : OID.clientAuth))),
    ),
    extension(OID.subjectKeyIdentifier, der.octetString(keyId(spki))),
    extension(OID.authorityKeyIdentifier, der.sequence(der.tlv(0x80, keyId(caSpki)))),
  ];
  if (request.altNames?.length)
    extensions.push(extension(OID.subjectAltName, altNames(request.altNames)));
  const cert = signCertificate(
    {
      issuer: issuerName(caCert),
      subject: distinguishedName(request.commonName, request.organizations ?? []),
      spki,
      extensions,
      days: request.validityDays ?? DEFAULT_VALIDITY_DAYS,
      validitySecs: request.validitySecs,
    },
    createPrivateKey(ca.keyPem),
  );
  return { certPem: cert, keyPem: exportKey(privateKey) };
}

/** A new ECDSA P-256 key pair, PEM, for signing keys that are not certificates. */
export function createSigningKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = newKey();
  return {
    privateKeyPem: exportKey(privateKey),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

interface TbsParams {
  issuer: Buffer;
  subject: Buffer;
  spki: Buffer;
  extensions: Buffer[];
  days: number;
  validitySecs?: number;
}

function signCertificate(params: TbsParams, signer: KeyObject): string {
  const notBefore = new Date(Date.now() - BACKDATE_MS);
  const notAfter =
    params.validitySecs === undefined
      ? new Date(notBefore.getTime() + params.days * DAY_MS)
      : new Date(Date.now() + params.validitySecs * 1000);
  const algorithm = der.sequence(der.oid(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const tbs = der.sequence(
    der.explicit(0, der.integer(Buffer.from([2]))),
    der.integer(serial),
    algorithm,
    params.issuer,
    der.sequence(der.time(notBefore), der.time(notAfter)),
    params.subject,
    params.spki,
    der.explicit(3, der.sequence(...params.extensions)),
  );
  const signature = sign('sha256', tbs, signer);
  const certificate = der.sequence(tbs, algorithm, der.bitString(signature));
  return toPem('CERTIFICATE', certificate);
}

function distinguishedName(commonName: string, organizations: string[]): Buffer {
  const rdn = (type: string, value: string): Buffer =>
    der.set(der.sequence(der.oid(type), der.utf8String(value)));
  return der.sequence(
    ...organizations.map((o) => rdn(OID.organization, o)),
    rdn(OID.commonName, commonName),
  );
}

/** The issuer field must equal the CA's subject byte for byte. */
function issuerName(caCert: X509Certificate): Buffer {
  const raw = caCert.raw;
  // Certificate -> TBSCertificate -> [version, serial, sigAlg, issuer, validity, subject, ...]
  const tbs = children(children(raw)[0]!);
  return tbs[5]!;
}

/** The DER children of a constructed element. */
function children(element: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const { offset: first, end } = header(element, 0);
  let offset = first;
  while (offset < end) {
    const child = header(element, offset);
    out.push(element.subarray(offset, child.end));
    offset = child.end;
  }
  return out;
}

function header(buf: Buffer, at: number): { offset: number; end: number } {
  let length = buf[at + 1]!;
  let offset = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[offset + i]!;
    offset += count;
  }
  return { offset, end: offset + length };
}

function altNames(names: string[]): Buffer {
  const entries = names.map((name) => {
    if (isIP(name) === 4) return der.tlv(0x87, Buffer.from(name.split('.').map(Number)));
    if (isIP(name) === 6) return der.tlv(0x87, ipv6Bytes(name));
    return der.tlv(0x82, Buffer.from(name, 'ascii'));
  });
  return der.sequence(...entries);
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
    : h;
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

function extension(id: string, value: Buffer, critical = false): Buffer {
  return der.sequence(
    der.oid(id),
    ...(critical ? [der.boolean(true)] : []),
    der.octetString(value),
  );
}

function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

function newKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function exportKey(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function toPem(label: string, data: Buffer): string {
  const b64 = data
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Re-exported so callers need not import node:crypto for public keys. */
export { createPublicKey };
