/**
 * IoT Hub shared access signatures:
 * `SharedAccessSignature sr={uri}&sig={sig}[&skn={name}]&se={expiry}` where
 * `sig = base64(HMAC-SHA256(base64decode(key), sr + "\n" + se))` and `sr` is already URI-encoded.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ErrorCode, KedgeError } from '../errors.js';

const PREFIX = 'SharedAccessSignature ';
/**
 * Shortest symmetric key accepted, in decoded bytes: IoT Hub's own minimum. A key that decodes to
 * nothing (`!!!!` does) would let anyone sign a valid token.
 */
export const MIN_KEY_BYTES = 16;
/** Canonical base64 with padding, nothing else (Buffer.from silently skips invalid characters). */
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why a base64 symmetric key cannot be used, or undefined when it can. */
export function keyProblem(keyBase64: string): string | undefined {
  if (!STRICT_BASE64.test(keyBase64)) return 'the key is not base64';
  const bytes = Buffer.from(keyBase64, 'base64').length;
  if (bytes < MIN_KEY_BYTES)
    return `the key decodes to ${bytes} bytes; at least ${MIN_KEY_BYTES} are needed`;
  return undefined;
}
/** The SDK's default token lifetime; used when the caller gives none. */
export const DEFAULT_SAS_TTL_SECS = 3600;

/** `encodeURIComponent` plus `!'()*`, as the Azure SDKs encode `sr` and `sig`. */
export function encodeUriComponentStrict(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The `sr` audience for a device or a module: `{host}/devices/{d}[/modules/{m}]`. */
export function resourceUri(host: string, deviceId: string, moduleId?: string): string {
  return `${host}/devices/${deviceId}${moduleId === undefined ? '' : `/modules/${moduleId}`}`;
}

/** HMAC-SHA256 of `data` with a base64 key, base64 encoded; what the workload API `sign` returns. */
export function signBase64(keyBase64: string, data: string | Buffer): string {
  return createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(data).digest('base64');
}

/** Options for {@link createSasToken}. */
export interface CreateSasOptions {
  /** Unencoded resource, e.g. `myhub/devices/d1/modules/m1`. */
  resource: string;
  /** The symmetric key, base64. */
  keyBase64: string;
  /** Absolute expiry, Unix seconds. Defaults to now + {@link DEFAULT_SAS_TTL_SECS}. */
  expirySecs?: number;
  /** Policy name (`skn`); omitted for device and module keys. */
  keyName?: string;
}

/** Creates a token exactly as azure-iot-common does. */
export function createSasToken(options: CreateSasOptions): string {
  const se = options.expirySecs ?? Math.floor(Date.now() / 1000) + DEFAULT_SAS_TTL_SECS;
  const sr = encodeUriComponentStrict(options.resource);
  const sig = encodeUriComponentStrict(signBase64(options.keyBase64, `${sr}\n${se}`));
  const skn =
    options.keyName === undefined ? '' : `&skn=${encodeUriComponentStrict(options.keyName)}`;
  return `${PREFIX}sr=${sr}&sig=${sig}${skn}&se=${se}`;
}

/** A parsed token. `sr` is kept both raw (signed form) and decoded. */
export interface ParsedSasToken {
  /** `sr` as it appeared (URI-encoded); the string that was signed. */
  srRaw: string;
  /** `sr` decoded. */
  resource: string;
  /** Decoded base64 signature. */
  signature: string;
  /** Expiry, Unix seconds. */
  expirySecs: number;
  keyName?: string;
}

function invalid(message: string): KedgeError {
  return new KedgeError(ErrorCode.Unauthorized, message);
}

function decodeField(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch (cause) {
    throw new KedgeError(ErrorCode.Unauthorized, 'SAS token field is not URI-encoded', { cause });
  }
}

/** Parses a token; throws `KEDGE_ERR_UNAUTHORIZED` when it is not a well-formed SAS. */
export function parseSasToken(token: string): ParsedSasToken {
  if (!token.startsWith(PREFIX)) throw invalid('not a SharedAccessSignature');
  const fields = new Map<string, string>();
  for (const part of token.slice(PREFIX.length).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalid('malformed SAS token field');
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  if (sr === undefined || sig === undefined || se === undefined)
    throw invalid('SAS token needs sr, sig and se');
  const expirySecs = Number(se);
  if (!/^\d+$/.test(se) || !Number.isSafeInteger(expirySecs))
    throw invalid('SAS se is not a number');
  const skn = fields.get('skn');
  return {
    srRaw: sr,
    resource: decodeField(sr),
    signature: decodeField(sig),
    expirySecs,
    ...(skn === undefined ? {} : { keyName: decodeField(skn) }),
  };
}

/** What a token must satisfy in {@link verifySasToken}. */
export interface VerifySasOptions {
  /** Audiences accepted, unencoded, compared case-insensitively (hub host or gateway host). */
  audiences: string[];
  /** Candidate keys (primary, secondary), base64. */
  keysBase64: string[];
  /** Current time, Unix seconds. Defaults to now. */
  nowSecs?: number;
}

function signatureMatches(parsed: ParsedSasToken, keys: string[], se: number): boolean {
  const given = Buffer.from(parsed.signature, 'base64');
  // An unusable key (empty, short, not base64) never verifies anything.
  return keys.some((key) => {
    if (keyProblem(key)) return false;
    const expected = Buffer.from(signBase64(key, `${parsed.srRaw}\n${se}`), 'base64');
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}

/**
 * Verifies audience, expiry and signature. Throws `KEDGE_ERR_UNAUTHORIZED` with a reason that is
 * safe to log (it never contains the token or the key).
 */
export function verifySasToken(token: string, options: VerifySasOptions): ParsedSasToken {
  const parsed = parseSasToken(token);
  const now = options.nowSecs ?? Math.floor(Date.now() / 1000);
  const audience = parsed.resource.toLowerCase();
  if (!options.audiences.some((a) => a.toLowerCase() === audience))
    throw invalid('SAS token audience does not match the identity');
  if (parsed.expirySecs <= now) throw invalid('SAS token expired');
  if (!signatureMatches(parsed, options.keysBase64, parsed.expirySecs))
    throw invalid('SAS token signature is invalid');
  return parsed;
}
