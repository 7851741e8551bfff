import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';

/** The venv's python with azure-iot-device 2.14 from PyPI (cached; scripts/python-sdk.sh). */
export function pythonWithSdk(): string {
  const script = path.join(PACKAGE_ROOT, 'scripts/python-sdk.sh');
  return execFileSync('bash', [script], { encoding: 'utf8', timeout: 300_000 }).trim();
}
