/**
 * Secret redaction for support bundles: a config is rewritten with every secret replaced, and
 * every text in the bundle is scrubbed of the secret values found in it as a second guard.
 */

export const REDACTED = '<redacted>';

/**
 * Keys whose values are secrets wherever they appear: the device key (`cloud.key`), leaf keys
 * (`primaryKey`, `secondaryKey`), upstream passwords, any token or private key.
 */
const SECRET_KEY = /(^key$|key$|keyPem$|password|secret|token|sas|credential)/i;
/** PEM private keys and SAS tokens inside any string. */
const SECRET_TEXT = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /SharedAccessSignature [^\s"']+/g,
];

/** A copy of `value` with secret fields replaced; `found` collects the secret strings removed. */
export function redactValue(value: unknown, found: Set<string> = new Set()): unknown {
  if (typeof value === 'string') return scrub(value, found);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, found));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (SECRET_KEY.test(k) && v !== null && typeof v !== 'object') {
      if (typeof v === 'string' && v.length > 0) found.add(v);
      out[k] = REDACTED;
    } else out[k] = redactValue(v, found);
  }
  return out;
}

function scrub(text: string, found: Set<string>): string {
  let out = text;
  for (const pattern of SECRET_TEXT)
    out = out.replace(pattern, (match) => {
      found.add(match);
      return REDACTED;
    });
  return out;
}

/** `text` with every known secret value (and any PEM private key or SAS token) replaced. */
export function scrubText(text: string, secrets: ReadonlySet<string>): string {
  let out = scrub(text, new Set());
  for (const secret of secrets) if (secret.length >= 8) out = out.split(secret).join(REDACTED);
  return out;
}
