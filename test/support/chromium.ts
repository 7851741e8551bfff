import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Debian's Chromium, which the browser tests drive through playwright-core. */
export const CHROMIUM = process.env.KEDGE_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * The Chromium binary, installed with apt-get when it is missing and the tests run as root (as
 * in CI); otherwise a message that says how to get it.
 */
export async function ensureChromium(): Promise<string> {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (process.getuid?.() === 0) {
    await run('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq chromium'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 600_000,
    }).catch(() => undefined);
    if (existsSync(CHROMIUM)) return CHROMIUM;
  }
  throw new Error(
    `the browser tests need Chromium at ${CHROMIUM}: install it with "apt-get install -y chromium" ` +
      '(or point KEDGE_TEST_CHROMIUM at a Chromium binary)',
  );
}
