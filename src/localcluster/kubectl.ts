import { execFile } from 'node:child_process';
import path from 'node:path';
import { ErrorCode, KedgeError } from '../common/errors.js';

export { PACKAGE_ROOT } from '../common/version.js';
import { PACKAGE_ROOT } from '../common/version.js';

/** Result of a kubectl run. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the kubectl in `binDir` against `kubeconfig` (or kubectl's own default when undefined);
 * never throws on a non-zero exit.
 */
export async function kubectl(
  binDir: string,
  kubeconfig: string | undefined,
  args: string[],
  input?: string,
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      path.join(binDir, 'kubectl'),
      [...(kubeconfig ? [`--kubeconfig=${kubeconfig}`] : []), ...args],
      { maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (err && typeof err.code !== 'number') {
          reject(
            new KedgeError(ErrorCode.Unavailable, `kubectl failed to run: ${err.message}`, {
              cause: err,
            }),
          );
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Applies kedge's CRDs and waits until they are Established. */
export async function installCrds(binDir: string, kubeconfig: string | undefined): Promise<void> {
  const dir = path.join(PACKAGE_ROOT, 'deploy', 'crds');
  const apply = await kubectl(binDir, kubeconfig, ['apply', '--server-side', '-f', dir]);
  if (apply.code !== 0)
    throw new KedgeError(ErrorCode.Unavailable, `installing CRDs failed: ${apply.stderr.trim()}`);
  const wait = await kubectl(binDir, kubeconfig, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    '-f',
    dir,
  ]);
  if (wait.code !== 0)
    throw new KedgeError(ErrorCode.Timeout, `CRDs not Established: ${wait.stderr.trim()}`);
}
