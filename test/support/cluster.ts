import { errorMessage } from '../../src/common/errors.js';
import path from 'node:path';
import {
  ensureBinaries,
  startControlPlane,
  type ControlPlane,
} from '../../src/localcluster/control-plane.js';
import {
  installCrds,
  kubectl,
  PACKAGE_ROOT,
  type KubectlResult,
} from '../../src/localcluster/kubectl.js';

/** A control plane for one test file, with logs kept under .test-artifacts/<name>. */
export interface TestCluster {
  cp: ControlPlane;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /** kubectl that must succeed; returns stdout. */
  kubectlOk(args: string[], input?: string): Promise<string>;
}

/** Starts a control plane with the kedge CRDs; tune node timing for fast lifecycle tests. */
export async function startTestCluster(
  name: string,
  timing: {
    nodeMonitorGracePeriodSecs?: number;
    defaultTolerationSecs?: number;
    /** Makes the API server verify kubelet serving certificates against this CA. */
    kubeletServingCaPem?: string;
  } = {},
): Promise<TestCluster> {
  const binDir = await ensureBinaries();
  const logDir = path.join(PACKAGE_ROOT, '.test-artifacts', `${name}-${Date.now()}`);
  const cp = await startControlPlane({ binDir, logDir, ...timing });
  await installCrds(cp.binDir, cp.kubeconfigPath);
  const run = (args: string[], input?: string): Promise<KubectlResult> =>
    kubectl(cp.binDir, cp.kubeconfigPath, args, input);
  return {
    cp,
    kubectl: run,
    kubectlOk: async (args, input) => {
      const res = await run(args, input);
      if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
      return res.stdout;
    },
  };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${errorMessage(last)}` : ''}`);
}
