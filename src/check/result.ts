/**
 * What `kedge check` reports: one result per check, printed one line each, with a fix hint under
 * every failure and warning.
 */

/** `skip`: the check could not run because an earlier one failed (the note says which). */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** The outcome of one check. */
export interface CheckResult {
  /** Short name, e.g. `gateway TLS`. */
  name: string;
  status: CheckStatus;
  /** What was found, one line. */
  message: string;
  /** What to do about a failure or warning, one line. */
  hint?: string;
}

export const ok = (name: string, message: string): CheckResult => ({
  name,
  status: 'ok',
  message,
});
export const warn = (name: string, message: string, hint: string): CheckResult => ({
  name,
  status: 'warn',
  message,
  hint,
});
export const fail = (name: string, message: string, hint: string): CheckResult => ({
  name,
  status: 'fail',
  message,
  hint,
});
export const skip = (name: string, message: string): CheckResult => ({
  name,
  status: 'skip',
  message,
});

/** Plain ASCII markers: they read the same in a terminal, journald and a support bundle. */
const MARKER: Record<CheckStatus, string> = {
  ok: 'ok  ',
  warn: 'warn',
  fail: 'FAIL',
  skip: 'skip',
};

/** One line per result, a `hint:` line under each failure and warning, and a summary line. */
export function formatResults(results: readonly CheckResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${MARKER[r.status]} ${r.name}: ${r.message}`);
    if (r.hint && (r.status === 'fail' || r.status === 'warn'))
      lines.push(`       hint: ${r.hint}`);
  }
  lines.push(summaryOf(results));
  return `${lines.join('\n')}\n`;
}

function summaryOf(results: readonly CheckResult[]): string {
  const count = (s: CheckStatus): number => results.filter((r) => r.status === s).length;
  const parts = [`${count('ok')} ok`, `${count('warn')} warnings`, `${count('fail')} failed`];
  if (count('skip') > 0) parts.push(`${count('skip')} skipped`);
  return `${parts.join(', ')}`;
}

/** True when any check failed: `kedge check` then exits non-zero. */
export function anyFailed(results: readonly CheckResult[]): boolean {
  return results.some((r) => r.status === 'fail');
}
