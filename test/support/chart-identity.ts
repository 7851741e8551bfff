import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { CHART_DIR } from '../../src/localcluster/render-deploy.js';

const run = promisify(execFile);

type KubectlOk = (args: string[], input?: string) => Promise<string>;

/** A kubeconfig that authenticates as the chart's ServiceAccount `kedge-system/kedge`. */
export async function serviceAccountKubeconfig(kubectlOk: KubectlOk): Promise<string> {
  const token = (
    await kubectlOk(['create', 'token', 'kedge', '-n', 'kedge-system', '--duration=2h'])
  ).trim();
  const admin = JSON.parse(await kubectlOk(['config', 'view', '--raw', '--minify', '-o', 'json']));
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: admin.clusters[0].cluster }],
    users: [{ name: 'kedge', user: { token } }],
    contexts: [{ name: 'kedge', context: { cluster: 'local', user: 'kedge' } }],
    'current-context': 'kedge',
  };
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'kedge-sa-')), 'kubeconfig');
  await writeFile(file, stringify(config), { mode: 0o600 });
  return file;
}

/**
 * Applies only the chart's ServiceAccount and RBAC (the CRDs are in already) and returns a
 * kubeconfig for that identity, so a controller run under it proves the chart's RBAC sufficient.
 * `values` are Helm `--set` values for the features the test turns on.
 */
export async function chartIdentity(
  binDir: string,
  kubectlOk: KubectlOk,
  values: string[] = [],
): Promise<string> {
  const { stdout } = await run(path.join(binDir, 'helm'), [
    'template',
    'kedge',
    CHART_DIR,
    '--namespace',
    'kedge-system',
    '--show-only',
    'templates/serviceaccount.yaml',
    '--show-only',
    'templates/rbac.yaml',
    ...values.flatMap((v) => ['--set', v]),
  ]);
  await kubectlOk(['apply', '-f', '-'], stdout);
  return serviceAccountKubeconfig(kubectlOk);
}
