/**
 * Certificate expiry and the clock: pure functions of a certificate and the local time, so that
 * tests can pass any time they like.
 */
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { fail, ok, warn, type CheckResult } from './result.js';

const DAY_MS = 24 * 3600 * 1000;

/**
 * Certificates nobody renews automatically warn when less than this remains: a month leaves
 * time to roll a new CA out to the fleet.
 */
export const EXPIRY_WARN_MS = 30 * DAY_MS;

/** One certificate to judge, and what to do about it. */
export interface CertificateSubject {
  /** e.g. `cloud CA (cloud.caPem)`. */
  name: string;
  certificate: X509Certificate;
  /** Warn when less than this remains. Default {@link EXPIRY_WARN_MS}. */
  warnBeforeMs?: number;
  /** What to do when it expired or is about to. */
  hint: string;
}

function days(ms: number): string {
  return `${Math.floor(ms / DAY_MS)} days`;
}

/** Expired fails, not yet valid fails, within the warning window warns. */
export function judgeExpiry(subject: CertificateSubject, nowMs: number): CheckResult {
  const { certificate: cert, name, hint } = subject;
  const notAfterMs = Date.parse(cert.validTo);
  const notBeforeMs = Date.parse(cert.validFrom);
  const check = `certificate ${name}`;
  if (nowMs > notAfterMs) return fail(check, `expired ${cert.validTo}`, hint);
  if (nowMs < notBeforeMs)
    return fail(
      check,
      `not valid before ${cert.validFrom}`,
      'the device clock is behind: set it (timedatectl, NTP)',
    );
  const left = notAfterMs - nowMs;
  if (left < (subject.warnBeforeMs ?? EXPIRY_WARN_MS))
    return warn(check, `expires ${cert.validTo} (in ${days(left)})`, hint);
  return ok(check, `valid until ${cert.validTo} (${days(left)} left)`);
}

/** Reads a PEM certificate, or undefined when the text holds none. */
export function parseCertificate(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

/**
 * Clock check against the only time the gateway reveals: its certificate's notBefore, a lower
 * bound (kedge issues certificates backdated by 5 minutes). A device clock behind it fails; a
 * clock running ahead cannot be seen this way, so the local NTP state is reported beside it.
 */
export function judgeClock(
  gatewayCert: X509Certificate | undefined,
  nowMs: number,
  ntpSynchronized: boolean | undefined,
): CheckResult {
  const name = 'clock';
  const ntp =
    ntpSynchronized === undefined
      ? 'NTP state unknown (timedatectl did not answer)'
      : ntpSynchronized
        ? 'NTP synchronized'
        : 'NTP not synchronized';
  const note =
    'the gateway serves no time, so only its certificate start is compared (a lower bound)';
  if (gatewayCert && nowMs < Date.parse(gatewayCert.validFrom))
    return fail(
      name,
      `device time ${new Date(nowMs).toISOString()} is before the gateway certificate's start ${gatewayCert.validFrom}; ${ntp}`,
      'set the clock (timedatectl set-ntp true): SAS tokens carry expiries and the gateway refuses tokens from a wrong clock',
    );
  if (ntpSynchronized === false)
    return warn(
      name,
      `${ntp}; ${note}`,
      'enable time sync (timedatectl set-ntp true): SAS tokens carry expiries, so skew of minutes breaks the cloud link',
    );
  return ok(
    name,
    gatewayCert ? `${ntp}; ${note}` : `${ntp}; no gateway certificate to compare with`,
  );
}

/** `timedatectl`'s NTPSynchronized property; undefined where timedatectl is missing or fails. */
export function ntpSynchronized(): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    execFile(
      'timedatectl',
      ['show', '--property=NTPSynchronized', '--value'],
      { timeout: 3_000 },
      (err, stdout) => {
        const value = stdout.trim();
        resolve(err || (value !== 'yes' && value !== 'no') ? undefined : value === 'yes');
      },
    );
  });
}
